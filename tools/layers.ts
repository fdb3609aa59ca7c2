/**
 * The import rule of the code base, checked: imports point one way. Inside `core/` a layer
 * imports only its own layer and the ones below it; above `core/` the emulator, the HIL
 * runner, the benchmark and the CLI stack up the same way, and `core/` imports none of them.
 * Run by `deno task check`; prints every offending import with its file and line and exits 1.
 *
 * ```sh
 * deno run --allow-read tools/layers.ts
 * ```
 *
 * @module
 */

/**
 * The layers, bottom first. A unit is a folder (`core/uart`) or, at the bottom, single files.
 * Units on one row are peers; peers may not import each other (a "cross" import), except the
 * files of the bottom row, which are leaf helpers.
 *
 * `core/spi` sits below `core/uart` because the boot loader forwards SPI NOR opcodes and
 * status registers to the flash (docs/uart.md §4.13), so the UART path builds on the SPI NOR
 * knowledge, never the reverse. `core/trace` sits above both because replaying a trace names
 * the frames it compares through the UART command table; the trace format itself
 * (`core/io/trace.ts`) stays in `core/io`, which the links record into. `core/image` (what a
 * flash dump holds) sits on top of the core so that it may read images through the flasher's
 * byte sources; nothing in the core below needs it. `web/` (the browser page) stands beside
 * `hil/`: it builds on the core and the emulator and never on the Deno-only CLI.
 */
export const LAYERS: readonly (readonly string[])[] = [
  [
    "core/errors.ts",
    "core/clock.ts",
    "core/timing.ts",
    "core/crc.ts",
    "core/target.ts",
    "core/hex.ts",
    "core/bytes.ts",
  ],
  ["core/chips"],
  ["core/io"],
  ["core/spi"],
  ["core/uart"],
  ["core/trace"],
  ["core/flasher"],
  ["core/image"],
  ["emulator"],
  ["mod.ts"],
  ["hil", "web"],
  ["bench"],
  ["cli"],
];

/** Folders whose files are checked (tests and tools may import anything). */
export const CHECKED_ROOTS: readonly string[] = ["core", "emulator", "hil", "web", "bench", "cli", "mod.ts"];

/** One import that breaks the rule. */
export interface LayerViolation {
  /** The importing file, relative to the repository root. */
  file: string;
  /** 1-based line of the import specifier. */
  line: number;
  /** The imported file, relative to the repository root. */
  target: string;
  /** Why it is refused. */
  reason: string;
}

const BOTTOM = 0;

/** The unit a repository path belongs to, or null when it is outside every layer. */
export function unitOf(path: string, layers: readonly (readonly string[])[] = LAYERS): string | null {
  for (const row of layers) {
    for (const unit of row) {
      if (path === unit || path.startsWith(unit + "/")) return unit;
    }
  }
  return null;
}

function rankOf(unit: string, layers: readonly (readonly string[])[]): number {
  return layers.findIndex((row) => row.includes(unit));
}

/** Relative import specifiers of a module's source, with their 1-based lines; comments skipped. */
export function importsOf(source: string): { spec: string; line: number }[] {
  const out: { spec: string; line: number }[] = [];
  let inBlock = false;
  const lines = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let text = lines[i];
    if (inBlock) {
      const end = text.indexOf("*/");
      if (end < 0) continue;
      text = text.slice(end + 2);
      inBlock = false;
    }
    text = text.replace(/\/\*.*?\*\//g, "");
    const open = text.indexOf("/*");
    if (open >= 0) {
      text = text.slice(0, open);
      inBlock = true;
    }
    if (/^\s*\/\//.test(text)) continue;
    const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+|^\s*export\s+\*\s+from\s*)["']([^"']+)["']/g;
    for (const m of text.matchAll(re)) {
      if (m[1].startsWith(".")) out.push({ spec: m[1], line: i + 1 });
    }
  }
  return out;
}

/** Join a relative specifier onto the folder of `from` (both repository-relative, POSIX). */
export function resolve(from: string, spec: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const seg of spec.split("/")) {
    if (seg === "." || seg === "") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  return parts.join("/");
}

/** Every import of `files` (path → source) that points up or across in `layers`. */
export function checkLayers(
  files: ReadonlyMap<string, string>,
  layers: readonly (readonly string[])[] = LAYERS,
): LayerViolation[] {
  const out: LayerViolation[] = [];
  for (const [file, source] of files) {
    const from = unitOf(file, layers);
    if (from === null) {
      out.push({
        file,
        line: 1,
        target: file,
        reason: "is in no layer: add it to LAYERS in tools/layers.ts",
      });
      continue;
    }
    for (const { spec, line } of importsOf(source)) {
      const target = resolve(file, spec);
      const to = unitOf(target, layers);
      if (to === null || to === from) continue;
      const a = rankOf(from, layers);
      const b = rankOf(to, layers);
      if (b > a) out.push({ file, line, target, reason: `${from} imports ${to}, a layer above it` });
      else if (b === a && a !== BOTTOM) {
        out.push({ file, line, target, reason: `${from} imports its peer ${to}` });
      }
    }
  }
  return out;
}

async function collect(root: string, path: string, into: Map<string, string>): Promise<void> {
  const full = `${root}/${path}`;
  const info = await Deno.stat(full);
  if (info.isFile) {
    if (path.endsWith(".ts")) into.set(path, await Deno.readTextFile(full));
    return;
  }
  for await (const e of Deno.readDir(full)) await collect(root, `${path}/${e.name}`, into);
}

/** Read the checked folders under `root` and check them. */
export async function checkTree(root: string): Promise<LayerViolation[]> {
  const files = new Map<string, string>();
  for (const r of CHECKED_ROOTS) await collect(root, r, files);
  return checkLayers(files);
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const violations = await checkTree(root);
  for (const v of violations) console.error(`${v.file}:${v.line}: imports ${v.target}: ${v.reason}`);
  if (violations.length > 0) {
    console.error(
      `${violations.length} import(s) break the layer order.\n` +
        "Move the shared code down to a layer both sides may import (order: tools/layers.ts).",
    );
    Deno.exit(1);
  }
}
