/**
 * The human lines of an `inspect` report: what `deno task flash inspect` prints and what the
 * browser page shows. Pure formatting over an {@link InspectReport} (redacted or not).
 *
 * @module
 */

import { hex, humanSize } from "../flasher/range.ts";
import type { InspectReport } from "./inspect.ts";

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
