/**
 * `deno task flash inspect`: what a dump (or the chip) holds, as lines or one JSON object,
 * secrets masked unless `--show-secrets`, optionally an OpenBeken template.
 *
 * @module
 */

import { hex, humanSize } from "../core/flasher/range.ts";
import { APP_START, inspectDump, type InspectReport, redactReport } from "../core/image/inspect.ts";
import type { FlasherContext } from "../core/flasher/context.ts";
import { readFlash } from "../core/flasher/read.ts";
import { TUYA_USUAL_START_BK7231 } from "../core/image/tuya_storage.ts";
import { obkTemplate } from "../core/image/tuya_config.ts";
import { FlashError } from "../core/errors.ts";
import type { Output } from "./output.ts";
import { writeOutput } from "../core/flasher/files.ts";

/** Options of `inspect`. */
export interface InspectOptions {
  showSecrets: boolean;
  obkTemplate?: string;
  /** Where the bytes came from, for the report. */
  source: string;
}

function valueText(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

/** The human lines of a (redacted or not) report. */
export function reportLines(r: InspectReport, source: string): string[] {
  const out: string[] = [`File:        ${source} (${humanSize(r.size)}, ${r.kind})`];
  out.push(
    `Chip:        ${r.chip.family ?? "unknown"}${
      r.chip.evidence.length ? ` (${r.chip.evidence.join("; ")})` : ""
    }`,
  );
  if (r.bootloader) {
    const b = r.bootloader;
    out.push(
      `Bootloader:  ${
        b.name ?? "not in the table"
      } (CRC-32 of 256/257 bytes ${b.crc256}/${b.crc257}); key: ${b.keyClass.class}${
        b.keyClass.key ? ` ${b.keyClass.key}` : ""
      } — ${b.keyClass.evidence}`,
    );
  }
  for (const p of r.partitions) {
    out.push(`Partition:   ${p.name.padEnd(17)} ${hex(p.start)}..${hex(p.end - 1)}`);
  }
  if (r.app) {
    const a = r.app;
    out.push(
      `App:         ${
        a.offset === 0 ? "the whole file (an app image stored for 0x11000)" : `at ${hex(a.offset)}`
      }${a.size !== null ? `, ${humanSize(a.size)} of data` : ""}, CRC16 framing ${
        a.keyClass.framingValid === null ? "n/a" : a.keyClass.framingValid ? "valid" : "INVALID"
      }; built for key: ${a.keyClass.class}${
        a.keyClass.key ? ` ${a.keyClass.key}` : ""
      } — ${a.keyClass.evidence}`,
    );
  }
  for (const c of r.rbl) {
    out.push(
      `RBL:         "${c.name}" ${c.version} at ${hex(c.offset)}: ${
        humanSize(c.dataSize)
      } (raw ${c.rawSize}), ` +
        `compression ${c.compression}, encryption ${c.encryption}, header CRC ${
          c.headerCrcValid ? "ok" : "BAD"
        }, ` +
        `data CRC-32 ${c.dataCrcValid === null ? "not checked" : c.dataCrcValid ? "ok" : "not matched"}, ` +
        `FNV-1a ${c.hashValid === null ? "not checked" : c.hashValid ? "ok" : "BAD"}`,
    );
  }
  if (r.tuya) {
    const t = r.tuya;
    out.push(
      `Tuya storage: starts at ${hex(t.start)} (${t.start}), ${t.blocks} blocks, ${
        Object.keys(t.values).length
      } values`,
    );
    for (const [k, v] of Object.entries(t.values)) out.push(`  ${k} (${v.kind}): ${valueText(v.value)}`);
    const b = t.board;
    if (b) {
      out.push(
        `Board:       module ${b.module ?? "?"}${b.moduleChip ? ` (${b.moduleChip})` : ""}, ${
          b.channels ?? "?"
        } channel(s)`,
      );
      for (const p of b.pins) out.push(`  P${p.pin}: ${p.function} (${p.key}) -> ${p.role};${p.channel}`);
      if (b.uartBaud !== null) out.push(`  UART at ${b.uartBaud} baud: TuyaMCU or a serial energy meter`);
    }
    for (const p of t.problems) out.push(`  problem: ${p}`);
  } else out.push("Tuya storage: none found");
  if (r.rf) {
    out.push(
      `RF/MAC:      at ${hex(r.rf.offset)}, TLV ${r.rf.valid ? "valid" : `INVALID (${r.rf.problem})`}, MAC ${
        r.rf.mac ?? "none"
      }`,
    );
  }
  if (r.obkConfig) {
    const c = r.obkConfig;
    out.push(
      `OpenBeken:   config v${c.version} at ${hex(c.offset)}, CRC8 ${c.crcValid ? "valid" : "INVALID"}`,
    );
    for (const [k, v] of Object.entries(c.text)) if (v !== "") out.push(`  ${k}: ${valueText(v)}`);
    if (c.pins.length) out.push(`  pins: ${c.pins.map((p) => `P${p.pin}=${p.role};${p.channel}`).join(" ")}`);
  }
  for (const w of r.warnings) out.push(`Warning:     ${w}`);
  return out;
}

/** Inspect `data` and print the report; write the OpenBeken template when asked. */
export async function inspectBytes(out: Output, data: Uint8Array, o: InspectOptions): Promise<void> {
  const full = inspectDump(data);
  const shown = o.showSecrets ? full : redactReport(full);
  if (o.obkTemplate) {
    const board = full.tuya?.board;
    if (!board || board.pins.length === 0) {
      throw new FlashError(
        "BAD_IMAGE",
        `${o.source} has no Tuya pin configuration to make an OpenBeken template from`,
        "inspect a backup of the device as it came (with its Tuya storage), or configure the pins in OpenBeken by hand",
      );
    }
    const chip = full.chip.family?.startsWith("BK7231M") ? "BK7231M" : full.chip.family;
    await writeOutput(
      o.obkTemplate,
      new TextEncoder().encode(JSON.stringify(obkTemplate(board, chip), null, 2) + "\n"),
    );
    out.note(`OpenBeken template written to ${o.obkTemplate}`);
  }
  out.result(
    { source: o.source, ...shown } as unknown as Record<string, unknown>,
    reportLines(shown, o.source),
  );
}

/**
 * The parts of the chip's flash `inspect` needs, read over the session: the bootloader window,
 * the start of the app, the RF and OpenBeken config sectors and the Tuya storage region; the rest
 * stays 0xFF.
 */
export async function readForInspect(ctx: FlasherContext): Promise<Uint8Array> {
  const size = ctx.flashSize;
  const img = new Uint8Array(size).fill(0xff);
  const ranges: [number, number][] = [[0, APP_START + 0x1000]];
  // RF sectors; on the BK7231 family OpenBeken's config sector follows its RF sector
  for (const rf of [0x1d0000, 0x1e0000, 0x3fe000, 0x7fe000]) {
    const len = rf < 0x200000 ? 0x2000 : 0x1000;
    if (rf + len <= size) ranges.push([rf, len]);
  }
  const tuyaStart = size === 0x200000 ? TUYA_USUAL_START_BK7231 : size - 0x12000;
  ranges.push([tuyaStart, size - tuyaStart]);
  for (const [addr, len] of ranges) {
    const r = await readFlash(ctx, { addr, size: len });
    img.set(r.data, addr);
  }
  return img;
}
