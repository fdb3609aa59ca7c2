/**
 * Persistence of a virtual chip's whole state (flash, status registers, efuse) in one file,
 * so a sequence of CLI commands works on the same chip. Format: a first line
 * `BEKENLAB-CHIP 1`, a second line of JSON metadata, then the raw flash bytes.
 *
 * @module
 */

import { toHex } from "../core/hex.ts";

const MAGIC = "BEKENLAB-CHIP 1";

/** The metadata line of a state file. */
export interface ChipStateMeta {
  /** Profile id. */
  chip: string;
  /** JEDEC ID, lowercase hex in wire order. */
  flashId: string;
  /** Flash size in bytes (the length of the data that follows). */
  size: number;
  /** Status-register word SR1 | SR2 << 8 | SR3 << 16. */
  sr: number;
  /** Efuse bytes, lowercase hex. */
  efuse: string;
}

/** A decoded state file. */
export interface ChipState {
  meta: ChipStateMeta;
  flash: Uint8Array;
}

/** Serialise a chip state. */
export function encodeState(state: ChipState): Uint8Array {
  const head = new TextEncoder().encode(`${MAGIC}\n${JSON.stringify(state.meta)}\n`);
  const out = new Uint8Array(head.length + state.flash.length);
  out.set(head, 0);
  out.set(state.flash, head.length);
  return out;
}

/** Parse a state file; throws a plain Error naming what is wrong. */
export function decodeState(bytes: Uint8Array): ChipState {
  const nl1 = bytes.indexOf(0x0a);
  const nl2 = nl1 < 0 ? -1 : bytes.indexOf(0x0a, nl1 + 1);
  if (nl1 < 0 || nl2 < 0 || new TextDecoder().decode(bytes.subarray(0, nl1)) !== MAGIC) {
    throw new Error("not a bekenlab chip state file");
  }
  const meta = JSON.parse(new TextDecoder().decode(bytes.subarray(nl1 + 1, nl2))) as ChipStateMeta;
  const flash = bytes.slice(nl2 + 1);
  if (flash.length !== meta.size) {
    throw new Error(`state file holds ${flash.length} flash bytes, expected ${meta.size}`);
  }
  return { meta, flash };
}

export { toHex };

/** Bytes of a hex string. */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
