/**
 * The `crc-erased` chip fault: a CheckCRC reply over flash that is not all 0xFF leaves the chip
 * carrying the CRC of 0xFF over the same length, as a reply corrupted on the wire (or a stale
 * reply of an erased region taken for this one) would. It is the reply an erased-region map
 * must not believe on its own (core/flasher/erased.ts). It fires at most once per chip: two
 * such replies over the same bytes are indistinguishable from erased flash to any check made
 * of chip CRCs.
 *
 * @module
 */

import { chipToStandard, crc32 } from "../../core/crc.ts";
import type { BekenChip } from "../chip.ts";
import type { NorFlash } from "../nor.ts";
import type { FaultDice } from "./plan.ts";

const FF = new Uint8Array(0x10000).fill(0xff);

function crcOf(
  read: (addr: number, len: number) => Uint8Array,
  start: number,
  len: number,
  fill?: boolean,
): number {
  let crc = 0;
  for (let o = 0; o < len; o += FF.length) {
    const n = Math.min(FF.length, len - o);
    crc = crc32(fill ? FF.subarray(0, n) : read(start + o, n), crc);
  }
  return crc;
}

/** Install the fault on `chip` (its flash is `nor`); the dice decide per eligible reply. */
export function installCrcLie(chip: BekenChip, nor: NorFlash, dice: FaultDice): void {
  let fired = false;
  const previous = chip.rewriteReply;
  chip.rewriteReply = (name, request, reply) => {
    const out = previous ? previous(name, request, reply) : reply;
    if (!out || fired || name !== "CheckCRC" || !request || request.length < 8 || out.length < 4) return out;
    const dv = new DataView(request.buffer, request.byteOffset, request.byteLength);
    const start = dv.getUint32(0, true);
    const end = dv.getUint32(4, true);
    const raw = new DataView(out.buffer, out.byteOffset, out.byteLength).getUint32(out.length - 4, true);
    const read = (a: number, n: number) => nor.read(a % nor.size, n);
    // the length the loader used: whichever of its conventions reproduces the reply
    const lens = [end + 1 - start, end - start].flatMap((n) => [n, n - (n % 256)]).filter((n) => n > 0);
    const len = lens.find((n) => chipToStandard(raw) === crcOf(read, start, n));
    if (len === undefined) return out;
    const erased = crcOf(read, start, len, true);
    if (chipToStandard(raw) === erased || !dice.roll("crc-erased")) return out;
    fired = true;
    const lie = out.slice();
    new DataView(lie.buffer).setUint32(lie.length - 4, chipToStandard(erased), true);
    dice.recorder.record(
      "crc-erased",
      0,
      `CheckCRC 0x${start.toString(16)}+0x${len.toString(16)} answered with the CRC of 0xFF (0x${
        erased.toString(16)
      })`,
    );
    return lie;
  };
}
