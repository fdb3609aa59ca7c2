/**
 * Beken SPI-mode entry (docs/spi-ch341.md B.2–B.5): hold CEN low, release it and stream 0xD2 in
 * the same bus transaction, look for the success signature (0xD2, then zeros), then poll the
 * JEDEC ID until it is neither all 0x00 nor all 0xFF. The whole sequence is retried a bounded
 * number of times with growing pauses, reports "attempt N/M" and honours an AbortSignal.
 *
 * @example
 * ```ts
 * import type { SpiMaster } from "../io/spi.ts";
 * declare const spi: SpiMaster;
 * const { jedecId, attempt } = await enterSpiMode(spi, { attempts: 20 }, {
 *   onProgress: (p) => console.error(p.message),
 * });
 * ```
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import type { SpiMaster, SpiStep } from "../io/spi.ts";
import { BEKEN_SPI_SYNC, SPI_OP } from "./opcodes.ts";

/** Entry parameters; all overridable from the CLI. */
export interface EntryParams {
  /** How long CEN is held low (ms). Tools use 100 ms–1 s. */
  cenLowMs: number;
  /** 0xD2 bytes streamed after the release (tools: 150–279). 279 = 9 full CH341A packets. */
  d2Count: number;
  /** Pause between CEN release and the first 0xD2 (µs), inside the same transaction. */
  releaseDelayUs: number;
  /** JEDEC reads allowed after the signature before the attempt counts as failed. */
  pollBudget: number;
  /** Pause between JEDEC polls (ms); 0 = back to back. */
  pollIntervalMs: number;
  /** Whole reset + stream + poll sequences before giving up. */
  attempts: number;
  /** Pause after a failed attempt (ms), doubled each time up to `maxBackoffMs`. */
  backoffMs: number;
  /** Upper bound of the pause between attempts (ms). */
  maxBackoffMs: number;
  /** Poll even when the 0xD2-then-zeros signature is missing (LTFT/GUI style). */
  pollWithoutSignature: boolean;
}

/**
 * Defaults: 100 ms reset (GUI, PICO2), 279 × D2 (B.5), 500 JEDEC polls per attempt (the notes'
 * minimum: the flash may answer zeros for 100 ms and more after entry), 20 attempts (real boards
 * often need more than the GUI's 10; one BK7252 needed 398: pass `attempts` for persistence).
 */
export const DEFAULT_ENTRY: Readonly<EntryParams> = Object.freeze({
  cenLowMs: 100,
  d2Count: 279,
  releaseDelayUs: 0,
  pollBudget: 500,
  pollIntervalMs: 0,
  attempts: 20,
  backoffMs: 100,
  maxBackoffMs: 1000,
  pollWithoutSignature: false,
});

/** A progress event. */
export interface EntryProgress {
  /** Attempt under way, from 1. */
  attempt: number;
  /** Attempts allowed. */
  attempts: number;
  /** Where the attempt stands. */
  phase: "reset" | "sync" | "poll" | "failed" | "entered";
  /** One human line, e.g. "SPI-mode entry: attempt 3/10". */
  message: string;
}

/** Hooks. */
export interface EntryHooks {
  /** Stops the attempts. */
  signal?: AbortSignal;
  /** Called at every phase of every attempt. */
  onProgress?: (p: EntryProgress) => void;
}

/** A successful entry. */
export interface EntryResult {
  /** JEDEC ID, wire order. */
  jedecId: Uint8Array;
  /** The attempt that worked (1-based). */
  attempt: number;
  /** JEDEC polls it took in that attempt. */
  polls: number;
}

/** Whether the MISO of the 0xD2 stream shows entry: first byte 0xD2, the rest 0x00. */
export function isEntrySignature(rx: Uint8Array): boolean {
  if (rx.length === 0 || rx[0] !== BEKEN_SPI_SYNC) return false;
  for (let i = 1; i < rx.length; i++) if (rx[i] !== 0) return false;
  return true;
}

/**
 * Whether three ID bytes look like a flash answering: not all 0x00, all 0xFF, or the D2 echo, and
 * a manufacturer byte other than 0x00 and 0xFF (JEP106 codes carry odd parity in bit 7, which
 * neither has). A read that straddles the moment the chip's SPI mode settles starts with the
 * 0x00 of the pins before it and ends with the 0xFF of a flash that saw no opcode (00 00 FF).
 */
export function isPlausibleJedec(id: Uint8Array): boolean {
  const all = (v: number) => id.every((b) => b === v);
  return id.length === 3 && !all(0x00) && !all(0xff) && id[0] !== 0x00 && id[0] !== 0xff &&
    !(id[0] === BEKEN_SPI_SYNC && id[1] === 0 && id[2] === 0);
}

/** The JEDEC-ID frame (`9F` + 3 bytes in). */
export const JEDEC_FRAME: SpiStep = {
  frame: { out: Uint8Array.of(SPI_OP.READ_ID), read: 3, tolerant: true },
};

/** Read the JEDEC ID once (bytes 1..3 of the reply). */
export async function readJedecId(spi: SpiMaster): Promise<Uint8Array> {
  const [rx] = await spi.transfer([JEDEC_FRAME]);
  return rx.slice(1, 4);
}

function describe(id: Uint8Array): string {
  return Array.from(id, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/**
 * Put a Beken chip into SPI flash mode. Throws FlashError "SPI_ENTRY" after `attempts`
 * failures, "CANCELLED" when the signal aborts.
 */
export async function enterSpiMode(
  spi: SpiMaster,
  params: Partial<EntryParams> = {},
  hooks: EntryHooks = {},
): Promise<EntryResult> {
  const p: EntryParams = { ...DEFAULT_ENTRY, ...params };
  const checkAbort = () => {
    if (hooks.signal?.aborted) {
      throw new FlashError("CANCELLED", "SPI-mode entry cancelled", "run the command again when ready");
    }
  };
  const report = (attempt: number, phase: EntryProgress["phase"], detail = "") =>
    hooks.onProgress?.({
      attempt,
      attempts: p.attempts,
      phase,
      message: `SPI-mode entry: attempt ${attempt}/${p.attempts}${detail ? `: ${detail}` : ""}`,
    });
  let last = "no attempt made";
  for (let attempt = 1; attempt <= p.attempts; attempt++) {
    checkAbort();
    report(attempt, "reset");
    await spi.transfer([{ cen: "low" }]);
    await spi.clock.sleep(p.cenLowMs);
    checkAbort();
    report(attempt, "sync");
    const steps: SpiStep[] = [{ cen: "high" }];
    if (p.releaseDelayUs > 0) steps.push({ delayUs: p.releaseDelayUs });
    steps.push({ frame: { out: new Uint8Array(p.d2Count).fill(BEKEN_SPI_SYNC) } });
    const [rx] = await spi.transfer(steps);
    const signature = isEntrySignature(rx);
    if (signature || p.pollWithoutSignature) {
      report(attempt, "poll");
      for (let poll = 1; poll <= p.pollBudget; poll++) {
        checkAbort();
        const id = await readJedecId(spi);
        if (isPlausibleJedec(id)) {
          report(attempt, "entered", `flash ID ${describe(id)}`);
          return { jedecId: id, attempt, polls: poll };
        }
        last = `flash ID still ${describe(id)} after ${poll} reads`;
        if (p.pollIntervalMs > 0) await spi.clock.sleep(p.pollIntervalMs);
      }
    } else {
      last = `no 0xD2 answer (got ${describe(rx.subarray(0, 4))}…)`;
    }
    report(attempt, "failed", last);
    if (attempt < p.attempts) {
      await spi.clock.sleep(Math.min(p.maxBackoffMs, p.backoffMs * 2 ** (attempt - 1)));
    }
  }
  throw new FlashError(
    "SPI_ENTRY",
    `the chip did not enter SPI mode in ${p.attempts} attempts (last: ${last})`,
    "check the wiring (CEN→D2, P20→SCK, P21→CS0, P22→MOSI, P23→MISO, GND), a 3.3 V programmer and a stable " +
      "3.3 V supply; then retry with more attempts or a longer CEN low time",
  );
}

/** Reboot the chip into its firmware: CEN low for `lowMs`, then released. */
export async function pulseCen(spi: SpiMaster, lowMs = 100): Promise<void> {
  await spi.transfer([{ cen: "low" }]);
  await spi.clock.sleep(lowMs);
  await spi.transfer([{ cen: "high" }]);
}
