import assert from "node:assert/strict";
import { checkLayers, checkTree, importsOf } from "../tools/layers.ts";

Deno.test("layers: the tree keeps the import order", async () => {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  assert.deepEqual(await checkTree(root), []);
});

Deno.test("layers: upward imports, inside the core and above it, are each named with file and line", () => {
  const files = new Map([
    [
      "core/uart/session.ts",
      'import { a } from "../errors.ts";\nimport { VirtualBench } from "../../hil/virtual_bench.ts";\n',
    ],
    [
      "core/chips/profiles.ts",
      '// import { x } from "../uart/table.ts";\nimport type { T } from "../flasher/mod.ts";\n',
    ],
    ["bench/cli_run.ts", 'import { main } from "../cli/flash.ts";\n'],
    ["cli/flash.ts", 'import { run } from "../bench/bench.ts";\nimport { crc32 } from "../core/crc.ts";\n'],
    ["hil/open.ts", '/* import "../cli/ports.ts" */ const x = await import("../cli/ports.ts");\n'],
  ]);
  const found = checkLayers(files).map((v) => `${v.file}:${v.line} ${v.target}`);
  assert.deepEqual(found.sort(), [
    "bench/cli_run.ts:1 cli/flash.ts",
    "core/chips/profiles.ts:2 core/flasher/mod.ts",
    "core/uart/session.ts:2 hil/virtual_bench.ts",
    "hil/open.ts:1 cli/ports.ts",
  ]);
});

Deno.test("layers: a file outside every layer is reported; comments are not imports", () => {
  const found = checkLayers(
    new Map([
      ["core/nowhere.ts", ""],
      ["core/io/x.ts", 'export * from "../chips/profiles.ts";\n'],
    ]),
  );
  assert.deepEqual(found.map((v) => v.file), ["core/nowhere.ts"]);
  assert.deepEqual(importsOf('} from "./a.ts";\nimport "./b.ts";\n  // from "./c.ts"'), [
    { spec: "./a.ts", line: 1 },
    { spec: "./b.ts", line: 2 },
  ]);
});

Deno.test("layers: peers on one row may not import each other; bottom-row files may", () => {
  const layers = [["core/a.ts", "core/b.ts"], ["core/x", "core/y"], ["core/top"]];
  const found = checkLayers(
    new Map([
      ["core/a.ts", 'import { b } from "./b.ts";\n'],
      ["core/x/one.ts", 'import { y } from "../y/two.ts";\nimport { a } from "../a.ts";\n'],
      ["core/top/t.ts", 'import { x } from "../x/one.ts";\nimport { y } from "../y/two.ts";\n'],
    ]),
    layers,
  );
  assert.deepEqual(found.map((v) => `${v.file}:${v.line} ${v.reason}`), [
    "core/x/one.ts:1 core/x imports its peer core/y",
  ]);
});
