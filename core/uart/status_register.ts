/**
 * The flash's status registers through the boot loader: reading them (FlashReadSR), writing the
 * protect-carrying ones (FlashWriteSR, docs/uart.md §4.13), and the `FLASH_LOCKED` error when the
 * protection does not clear. The unprotect sequence itself is `UartTarget.unprotect` in
 * `target.ts`.
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { hex } from "../hex.ts";
import { type FlashPart, formatJedecId } from "../spi/jedec.ts";
import { SPI_OP } from "../spi/opcodes.ts";
import { decodeStatus, diagnoseLock, protectClearMask } from "../spi/status.ts";
import type { UartClient } from "./client.ts";
import { COMMANDS } from "./table.ts";

/** SPI opcode writing the status registers (WRSR). */
const WRSR = SPI_OP.WRITE_SR;
/** SPI opcode writing SR2 alone, on parts that have it. */
const WRSR2 = SPI_OP.WRITE_SR2;
/** Status-register write attempts before an unprotect is declared impossible. */
export const UNPROTECT_TRIES = 3;
/** Attempts per status-register read on a timeout. */
export const SR_READ_ATTEMPTS = 3;

/** The part's status registers, SR1 first, as the loader reads them (FlashReadSR). */
export async function readSrBytes(client: UartClient, part: FlashPart): Promise<number[]> {
  // a status read changes nothing, so one whose request or reply was lost is simply sent again
  // (status writes are not: a repeated no-op write locks some parts)
  const saved = client.attempts;
  client.attempts = Math.max(saved, SR_READ_ATTEMPTS);
  try {
    const out: number[] = [];
    for (const cmd of part.srRead.slice(0, part.srCount)) {
      out.push((await client.command(COMMANDS.FlashReadSR, { cmd })).value);
    }
    return out;
  } finally {
    client.attempts = saved;
  }
}

/**
 * Write the protect-carrying registers: `01 SR1` on one-register parts, `01 SR1 SR2`
 * otherwise (what the Beken tools send). On a retry, parts with a separate SR2 opcode also
 * get `31 SR2`.
 */
export async function writeSr(
  client: UartClient,
  part: FlashPart,
  value: number,
  current: number[],
  retry: boolean,
): Promise<void> {
  const sr1 = value & 0xff;
  const sr2 = (value >>> 8) & 0xff;
  if (part.srCount === 1) {
    await client.command(COMMANDS.FlashWriteSR, { cmd: WRSR, value: Uint8Array.of(sr1) });
    return;
  }
  await client.command(COMMANDS.FlashWriteSR, { cmd: WRSR, value: Uint8Array.of(sr1, sr2) });
  if (retry && part.srWriteOpcodes.includes(WRSR2) && current[1] !== sr2) {
    await client.command(COMMANDS.FlashWriteSR, { cmd: WRSR2, value: Uint8Array.of(sr2) });
  }
}

/** The `FLASH_LOCKED` error for a part whose status register `sr` kept its protection. */
export function lockedError(part: FlashPart, sr: number, port: string): FlashError {
  const width = 2 * Math.max(1, part.srCount);
  const lock = diagnoseLock(part, sr);
  const f = decodeStatus(part, sr);
  const l = part.layout;
  const bits: string[] = [];
  if (f.bp) bits.push(`BP=${f.bp}`);
  if (f.tb && (protectClearMask(part) & (1 << (l.tbBit ?? 0)))) bits.push("TB=1");
  if (f.sec && (protectClearMask(part) & (1 << (l.secBit ?? 0)))) bits.push("SEC=1");
  if (f.cmp) bits.push("CMP=1");
  const what = lock.locked
    ? lock.reason
    : `status register ${hex(sr, width)} still has ${
      bits.join(" ") || "protect bits"
    } set after ${UNPROTECT_TRIES} writes`;
  const remedy = lock.mode === "permanent"
    ? "this flash's protection is permanent: only unprotected ranges can be written"
    : lock.mode === "power-cycle"
    ? "power-cycle the chip (the lock clears at power-off) and run again"
    : "power-cycle the chip and run again; if it persists, flash over SPI (CH341A) instead";
  return new FlashError(
    "FLASH_LOCKED",
    `cannot unprotect the ${part.name} (${formatJedecId(part.id)}) on ${port}: ${what}`,
    remedy,
  );
}
