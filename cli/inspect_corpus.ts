/**
 * `deno task inspect-corpus <dir>`: inspect every `.bin` in a directory of real dumps and print
 * one table row each (chip, bootloader, app key class, Tuya module, pins found, MAC, RF valid);
 * no secrets are printed. Where a dump comes with published expectations, they are checked
 * too: `<name>.tuya.expected.json` (the board keys `module`, `*_pin`, `*_lv`, `ch_num`) and
 * `<name>.debugAES/decoded_N.bin` (the decrypted storage blocks, byte for byte). Exits 1 when
 * a dump makes the inspector throw or an expectation fails.
 *
 * @module
 */

import { join } from "node:path";
import { inspectDump, type InspectReport, redactReport } from "../core/image/inspect.ts";
import { secretLeaves } from "../core/image/tuya_config.ts";
import { reportLines } from "../core/image/report_lines.ts";
import { decryptBlock, findStorage, TUYA_BLOCK } from "../core/image/tuya_storage.ts";

const BOARD_KEY = /^(module|ch_num|.*_pin|.*_lv)$/;

/** Check a dump against its published expectations; returns failures, one line each. */
export async function checkExpectations(
  dir: string,
  name: string,
  data: Uint8Array,
  r: InspectReport,
): Promise<string[]> {
  const fails: string[] = [];
  const base = name.replace(/\.bin$/, "");
  const expected = await Deno.readTextFile(join(dir, `${base}.tuya.expected.json`)).catch(() => null);
  if (expected !== null) {
    const want = Object.fromEntries(
      Object.entries(JSON.parse(expected) as Record<string, string>).filter(([k]) => BOARD_KEY.test(k)),
    );
    const got = r.tuya?.board?.config ?? {};
    for (const [k, v] of Object.entries(want)) {
      if (got[k] !== v) fails.push(`${name}: ${k} is ${got[k]}, expected ${v}`);
    }
    for (const k of Object.keys(got)) {
      if (!(k in want)) fails.push(`${name}: ${k} found, not in the expected file`);
    }
  }
  const aesDir = join(dir, `${base}.debugAES`);
  const storage = findStorage(data);
  let n = 0;
  for (;; n++) {
    const gt = await Deno.readFile(join(aesDir, `decoded_${n}.bin`)).catch(() => null);
    if (!gt) break;
    if (!storage) {
      fails.push(`${name}: no storage found, ${base}.debugAES has blocks`);
      break;
    }
    const mine = decryptBlock(data, storage.start + n * TUYA_BLOCK, storage);
    if (mine.length !== gt.length || mine.some((b, i) => b !== gt[i])) {
      fails.push(`${name}: decoded_${n}.bin differs`);
    }
  }
  if (n > 0 && fails.length === 0) {
    console.log(`${name}: ${n} decrypted blocks equal ${base}.debugAES/decoded_N.bin`);
  }
  if (expected !== null && fails.length === 0) {
    console.log(`${name}: board keys equal ${base}.tuya.expected.json`);
  }
  return fails;
}

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
}

/** Run over `dir`; returns the exit status. */
export async function inspectCorpus(dir: string): Promise<number> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile && e.name.endsWith(".bin")) names.push(e.name);
  names.sort();
  const header = ["file", "chip", "bootloader", "app key", "module", "pins", "MAC", "RF valid"];
  const rows: string[][] = [];
  const failures: string[] = [];
  for (const name of names) {
    try {
      const data = await Deno.readFile(join(dir, name));
      const r = inspectDump(data);
      const board = r.tuya?.board;
      rows.push([
        name,
        r.chip.family ?? "?",
        r.bootloader ? `${r.bootloader.name ?? "unknown"} (${r.bootloader.keyClass.class})` : "-",
        r.app?.keyClass.class ?? "-",
        r.tuya ? board?.module ?? "(no module)" : "no Tuya storage",
        board ? board.pins.map((p) => `P${p.pin}=${p.role};${p.channel}`).join(" ") || "none" : "-",
        r.rf?.mac ?? "-",
        r.rf ? String(r.rf.valid) : "-",
      ]);
      failures.push(...await checkExpectations(dir, name, data, r));
      for (const c of r.rbl) {
        if (!c.headerCrcValid || c.dataCrcValid === false || c.hashValid === false) {
          failures.push(`${name}: RBL "${c.name}" at 0x${c.offset.toString(16)} does not check`);
        }
      }
      // nothing secret may survive the masking (counted, never printed)
      const masked = redactReport(r);
      const shown = JSON.stringify(masked) + reportLines(masked, name).join("\n");
      const secrets = r.tuya
        ? [
          r.tuya.innerKey,
          ...Object.entries(r.tuya.values).flatMap(([k, v]) =>
            v.kind === "binary" ? [String(v.value).slice(4, 36)] : secretLeaves(v.value, k)
          ),
        ]
        : [];
      const leaked = secrets.filter((x) => shown.includes(x)).length;
      if (leaked > 0) failures.push(`${name}: ${leaked} secret value(s) appear in the masked output`);
    } catch (e) {
      failures.push(`${name}: inspect crashed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => Math.min(r[i].length, 60))));
  console.log(row(header, widths));
  for (const r of rows) console.log(row(r, widths));
  for (const f of failures) console.error(`FAIL ${f}`);
  console.log(`${names.length} dumps, ${rows.length} inspected, ${failures.length} failures`);
  return failures.length === 0 && names.length > 0 ? 0 : 1;
}

if (import.meta.main) {
  const dir = Deno.args[0];
  if (!dir) {
    console.error("error: no directory given\nremedy: deno task inspect-corpus <dir of .bin dumps>");
    Deno.exit(2);
  }
  try {
    Deno.exit(await inspectCorpus(dir));
  } catch (e) {
    console.error(`error: cannot read ${dir}: ${e instanceof Error ? e.message : e}`);
    console.error("remedy: pass a directory of .bin dumps");
    Deno.exit(2);
  }
}
