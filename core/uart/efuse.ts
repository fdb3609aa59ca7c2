/**
 * Reading the eFuse through the SCTRL state machine (docs/uart.md §4.16): one byte at a time,
 * and the 16-byte key as four little-endian words.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { hex } from "../hex.ts";
import type { UartClient } from "./client.ts";
import { COMMANDS } from "./table.ts";

/** eFuse control register: byte address in bits 8..12, start bit 0 (docs/uart.md §4.16). */
export const EFUSE_CTRL = 0x00800074;
/** eFuse read-out register: bit 8 valid, bits 0..7 the byte. */
export const EFUSE_OPTR = 0x00800078;
/** Reads of the key after the first, to find two in a row that agree. */
export const KEY_READS = 3;

/**
 * Read eFuse bytes 0..15 (docs/uart.md §4.16) and return them as four little-endian words. The
 * key decides the key guard, and neither a register reply nor the write selecting the byte
 * carries a checksum: the key is read until two reads in a row agree.
 */
export async function readKey(client: UartClient): Promise<[number, number, number, number]> {
  let last = await readKeyOnce(client);
  for (let i = 0; i < KEY_READS; i++) {
    const next = await readKeyOnce(client);
    if (next.every((w, k) => w === last[k])) return next;
    last = next;
  }
  throw new FlashError(
    "BAD_REPLY",
    `the eFuse key read differently ${KEY_READS + 1} times in a row on ${client.link.name}`,
    "lower --baud (e.g. 115200), shorten the wires and check the 3.3 V supply, then run again",
  );
}

async function readKeyOnce(client: UartClient): Promise<[number, number, number, number]> {
  const bytes = new Uint8Array(16);
  for (let a = 0; a < 16; a++) bytes[a] = await readEfuseByte(client, a);
  const dv = new DataView(bytes.buffer);
  return [0, 4, 8, 12].map((o) => dv.getUint32(o, true)) as [number, number, number, number];
}

/** One eFuse byte through the SCTRL state machine. */
export async function readEfuseByte(client: UartClient, addr: number): Promise<number> {
  const readReg = async (a: number) => (await client.command(COMMANDS.ReadReg, { addr: a })).value;
  const ctrl = ((await readReg(EFUSE_CTRL)) & ~0x1f02) | ((addr & 0x1f) << 8) | 1;
  await client.command(COMMANDS.WriteReg, { addr: EFUSE_CTRL, value: ctrl >>> 0 });
  const clock = client.link.clock;
  const deadline = clock.now() + 1000;
  while ((await readReg(EFUSE_CTRL)) & 1) {
    if (clock.now() >= deadline) {
      throw new FlashError(
        "TIMEOUT",
        `eFuse byte ${addr} read did not finish within 1 s on ${client.link.name}`,
        "power-cycle the chip and run again",
      );
    }
  }
  const v = await readReg(EFUSE_OPTR);
  if (!(v & 0x100)) {
    throw new FlashError(
      "BAD_REPLY",
      `eFuse byte ${addr} read came back invalid (0x800078 = ${hex(v)})`,
      "power-cycle the chip and run again; eFuse reads may be disabled on this chip",
    );
  }
  return v & 0xff;
}
