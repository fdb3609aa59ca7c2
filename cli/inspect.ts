/**
 * `deno task flash inspect`: what a dump (or the chip) holds, as lines or one JSON object,
 * secrets masked unless `--show-secrets`, optionally an OpenBeken template.
 *
 * @module
 */

import { APP_START, inspectDump, redactReport } from "../core/image/inspect.ts";
import { reportLines } from "../core/image/report_lines.ts";
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
