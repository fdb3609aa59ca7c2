/**
 * The README's "Flashing a BK7231M / BL2028N" recipe, run as written (in a temporary directory,
 * in-process): every command succeeds except the N build the key check refuses, and the
 * emulated chip boots at the end with the Wi-Fi and pins that were set.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../cli/flash.ts";
import { sampleFiles } from "../core/image/samples.ts";
import { decodeObkConfig } from "../core/image/obk_config.ts";
import { createVirtualChip } from "../emulator/virtual.ts";

function recipe(readme: string): string[] {
  const at = readme.indexOf("### Flashing a BK7231M / BL2028N");
  assert.ok(at >= 0, "the recipe section exists");
  const block = readme.slice(
    readme.indexOf("```sh", at) + 5,
    readme.indexOf("```", readme.indexOf("```sh", at) + 5),
  );
  return block.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

/** Split a command line the way a POSIX shell does for these simple lines (quotes, $VAR). */
function words(line: string, vars: Record<string, string>): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|(\S+)/g)) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2].startsWith("$")) out.push(...vars[m[2].slice(1)].split(/\s+/));
    else out.push(m[2]);
  }
  return out;
}

Deno.test("the README's BK7231M recipe runs as written on the emulator", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const dir = await Deno.makeTempDir();
  const cwd = Deno.cwd();
  // the recipe uses relative paths; test modules run one after another (no --parallel), so this is safe
  Deno.chdir(dir);
  try {
    const vars: Record<string, string> = {};
    const codes: [string, number, string][] = [];
    for (const line of recipe(readme)) {
      const assign = /^(\w+)="(.*)"$/.exec(line);
      if (assign) {
        vars[assign[1]] = assign[2];
        continue;
      }
      const w = words(line, vars);
      assert.deepEqual(w.slice(0, 2), ["deno", "task"], line);
      if (w[2] === "sample-images") {
        await Deno.mkdir(w[3], { recursive: true });
        for (const [name, data] of Object.entries(sampleFiles())) {
          await Deno.writeFile(join(w[3], name), data);
        }
        continue;
      }
      assert.equal(w[2], "flash", line);
      let err = "";
      const code = await main(w.slice(3), {
        io: { stdout: () => {}, stderr: (t) => (err += t), stderrIsTTY: false },
        now: () => new Date(Date.UTC(2026, 11, 6, 1, codes.length)),
      });
      codes.push([line, code, err]);
    }
    for (const [line, code, err] of codes) {
      const refused = line.includes("sample-bk7231n-qio.bin");
      assert.equal(code !== 0, refused, `${line}\n${err}`);
      if (refused) assert.match(err, /remedy: use the BK7231M build/);
    }
    const v = await createVirtualChip({ chip: "bk7231m", state: join(dir, "m.chip") });
    const boot = v.chip.bootCheck();
    assert.ok(boot.boots, boot.reason);
    const cfg = decodeObkConfig(v.nor.snapshot().data.subarray(0x1d1000, 0x1d2000))!;
    assert.ok(cfg.crcValid);
    assert.equal(cfg.text["wifi.ssid"], "lab");
    assert.deepEqual(cfg.pins.map((p) => p.pin), [6, 8, 24]);
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(dir, { recursive: true });
  }
});
