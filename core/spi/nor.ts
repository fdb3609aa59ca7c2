/**
 * Host-side SPI NOR operations over an {@link SpiMaster}: JEDEC identify, read, page program
 * split at 256-byte pages, 4K/32K/64K/chip erase, status read/write, and the unprotect of
 * docs/spi-ch341.md C.7 (write only when needed, verify the whole protect field, report SRP or
 * hardware locks as FLASH_LOCKED instead of looping).
 *
 * Every write-type command goes out in one transaction `WREN, RDSR, <command>, RDSR`: the first
 * RDSR proves WEL was set (as BK7231GUIFlashTool requires), the second is the first busy poll.
 *
 * @example
 * ```ts
 * import type { SpiMaster } from "../io/spi.ts";
 * declare const spi: SpiMaster;
 * declare const image: Uint8Array;
 * const nor = await SpiNor.identify(spi);
 * await nor.unprotect();
 * await nor.erase(0x1000, "4k");
 * await nor.program(0x1000, image);
 * ```
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import { hex } from "../hex.ts";
import type { SpiFrame, SpiMaster, SpiStep } from "../io/spi.ts";
import { DEFAULT_TIMING } from "../timing.ts";
import { type FlashPart, flashPartFor, formatJedecId } from "./jedec.ts";
import { isPlausibleJedec, readJedecId } from "./entry.ts";
import { ERASE_OPCODE, ERASE_SIZE, type EraseKind, SPI_OP, SR_WEL, SR_WIP } from "./opcodes.ts";
import {
  decodeStatus,
  describeStatus,
  diagnoseLock,
  needsUnprotect,
  srWordOf,
  unprotectedValue,
} from "./status.ts";

/** Page size of every supported part. */
export const PAGE_SIZE = 256;
/** Largest read in one CS frame (flashrom's CH341A limit, WCH's buffer). */
export const READ_FRAME = 4096;

/** Erase unit. */
export type { EraseKind };

/** Busy-wait limits (ms). Defaults: GUI 5 s / 120 s, flashrom's "100–4000 ms" for blocks. */
export interface NorTimeouts {
  /** Page program limit (ms). */
  pageMs: number;
  /** 4 KiB sector erase limit (ms). */
  sectorMs: number;
  /** 64 KiB block erase limit (ms). */
  blockMs: number;
  /** Chip erase limit (ms). */
  chipMs: number;
  /** Status-register write limit (ms). */
  statusMs: number;
}

/** Default timeouts. */
export const DEFAULT_NOR_TIMEOUTS: Readonly<NorTimeouts> = Object.freeze({
  pageMs: 5000,
  sectorMs: 5000,
  blockMs: 10_000,
  chipMs: 120_000,
  statusMs: 5000,
});

/** What an unprotect did. */
export interface UnprotectOutcome {
  /** Register bytes before. */
  before: number[];
  /** Register bytes after. */
  after: number[];
  /** Whether a status write was issued. */
  wrote: boolean;
}

const WREN: SpiStep = { frame: { out: Uint8Array.of(SPI_OP.WRITE_ENABLE) } };
const RDSR1: SpiStep = { frame: { out: Uint8Array.of(SPI_OP.READ_SR1), read: 1, tolerant: true } };
const WIP = SR_WIP;
const WEL = SR_WEL;

/** Operations on one SPI NOR flash. */
export class SpiNor {
  /** The SPI master the flash hangs on. */
  readonly spi: SpiMaster;
  /** The part (from the JEDEC table, or a generic stand-in). */
  readonly part: FlashPart;
  /** JEDEC ID read at identify time, wire order. */
  readonly jedecId: Uint8Array;
  /** How long each kind of operation may keep the flash busy. */
  readonly timeouts: NorTimeouts;

  /** The part `part` with ID `jedecId` behind `spi`. */
  constructor(spi: SpiMaster, part: FlashPart, jedecId: Uint8Array, timeouts: Partial<NorTimeouts> = {}) {
    this.spi = spi;
    this.part = part;
    this.jedecId = jedecId;
    this.timeouts = { ...DEFAULT_NOR_TIMEOUTS, ...timeouts };
  }

  /**
   * Read the JEDEC ID and pick the part. An implausible ID (all 0x00/0xFF) is UNKNOWN_FLASH.
   * For an unknown part whose SR2 reads 0xFF, a single status register is assumed (as the GUI
   * treats 0xFF: "not implemented").
   */
  static async identify(
    spi: SpiMaster,
    opts: { jedecId?: Uint8Array; part?: FlashPart; timeouts?: Partial<NorTimeouts> } = {},
  ): Promise<SpiNor> {
    const id = opts.jedecId ?? await readJedecId(spi);
    if (!isPlausibleJedec(id)) {
      throw new FlashError(
        "UNKNOWN_FLASH",
        `no SPI flash answers (JEDEC ID ${formatJedecId(id)})`,
        "check the clip/wiring and power; for a Beken chip use --chip beken-spi so the chip is put in SPI mode first",
      );
    }
    let part = opts.part ?? flashPartFor(id);
    if (!part.known) {
      const [rx] = await spi.transfer([{
        frame: { out: Uint8Array.of(SPI_OP.READ_SR2), read: 1, tolerant: true },
      }]);
      if (rx[1] === 0xff) part = { ...part, srCount: 1, srRead: [0x05], sr2Write: "none", protectMask: 0x7c };
    }
    return new SpiNor(spi, part, id, opts.timeouts);
  }

  /** Flash size in bytes. */
  get size(): number {
    return this.part.size;
  }

  /** Read `len` bytes at `addr` (3-byte addressing, frames of up to 4 KiB, many per transaction). */
  async read(addr: number, len: number): Promise<Uint8Array> {
    this.#checkRange(addr, len);
    const out = new Uint8Array(len);
    const perTransaction = 16;
    const chunk = Math.max(1, Math.min(READ_FRAME, (this.spi.maxFrame ?? Infinity) - 4));
    for (let o = 0; o < len;) {
      const steps: SpiStep[] = [];
      const spans: [number, number][] = [];
      for (let k = 0; k < perTransaction && o < len; k++) {
        const n = Math.min(chunk, len - o);
        const a = addr + o;
        steps.push({
          frame: { out: Uint8Array.of(SPI_OP.READ, a >> 16, a >> 8, a), read: n, tolerant: true },
        });
        spans.push([o, n]);
        o += n;
      }
      const rx = await this.spi.transfer(steps);
      spans.forEach(([off, n], i) => out.set(rx[i].subarray(4, 4 + n), off));
    }
    return out;
  }

  /** Status registers as bytes, one per register of the part. */
  async readStatus(): Promise<number[]> {
    if (this.part.srCount === 0) return [];
    const steps = this.part.srRead.map((op): SpiStep => ({
      frame: { out: Uint8Array.of(op), read: 1, tolerant: true },
    }));
    const rx = await this.spi.transfer(steps);
    return rx.map((r) => r[1]);
  }

  /**
   * Program `data` at `addr`, one page program per 256-byte page touched, each waited for.
   * Pages that are all 0xFF are skipped: programming 0xFF changes nothing on NOR. A whole,
   * aligned page offers its own first bytes as padding: the page buffer wraps, so clocking
   * them again changes nothing, and the CH341A then needs no short packet for the page.
   */
  async program(addr: number, data: Uint8Array): Promise<void> {
    this.#checkRange(addr, data.length);
    for (let o = 0; o < data.length;) {
      const a = addr + o;
      const n = Math.min(data.length - o, PAGE_SIZE - (a % PAGE_SIZE));
      if (data.subarray(o, o + n).every((b) => b === 0xff)) {
        o += n;
        continue;
      }
      const out = new Uint8Array(4 + n);
      out.set([0x02, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff]);
      out.set(data.subarray(o, o + n), 4);
      const pad = n === PAGE_SIZE ? out.subarray(4) : undefined;
      await this.#writeCommand(
        { out, pad },
        `page program at ${hex(a, 6)}`,
        DEFAULT_TIMING.pageProgramMs,
        this.timeouts.pageMs,
      );
      o += n;
    }
  }

  /** Erase the unit at `addr` (must be aligned), or the whole chip. */
  async erase(addr: number, kind: EraseKind): Promise<void> {
    const op = ERASE_OPCODE[kind];
    if (kind === "chip") {
      await this.#writeCommand(
        { out: Uint8Array.of(op) },
        "chip erase",
        DEFAULT_TIMING.chipEraseMs,
        this.timeouts.chipMs,
      );
      return;
    }
    const size = ERASE_SIZE[kind];
    if (addr % size !== 0) {
      throw new FlashError(
        "BAD_RANGE",
        `${kind} erase at ${hex(addr, 6)} is not ${kind} aligned`,
        "align the address",
      );
    }
    this.#checkRange(addr, size);
    const typical = kind === "4k"
      ? DEFAULT_TIMING.sectorEraseMs
      : kind === "32k"
      ? DEFAULT_TIMING.block32EraseMs
      : DEFAULT_TIMING.blockEraseMs;
    const timeout = kind === "4k" ? this.timeouts.sectorMs : this.timeouts.blockMs;
    await this.#writeCommand(
      { out: Uint8Array.of(op, addr >> 16, (addr >> 8) & 0xff, addr & 0xff) },
      `${kind} erase at ${hex(addr, 6)}`,
      typical,
      timeout,
    );
  }

  /**
   * Write status registers: "combined" = `01 SR1 SR2`, "separate" = `01 SR1` then `31 SR2`,
   * single register = `01 SR1`.
   */
  async writeStatus(bytes: number[], style: FlashPart["sr2Write"] = this.part.sr2Write): Promise<void> {
    const label = "status-register write";
    const t = DEFAULT_TIMING.srWriteMs;
    if (this.part.srCount < 2 || style === "none") {
      await this.#writeCommand(
        { out: Uint8Array.of(SPI_OP.WRITE_SR, bytes[0]) },
        label,
        t,
        this.timeouts.statusMs,
      );
    } else if (style === "separate") {
      await this.#writeCommand(
        { out: Uint8Array.of(SPI_OP.WRITE_SR, bytes[0]) },
        label,
        t,
        this.timeouts.statusMs,
      );
      await this.#writeCommand(
        { out: Uint8Array.of(SPI_OP.WRITE_SR2, bytes[1]) },
        label,
        t,
        this.timeouts.statusMs,
      );
    } else {
      await this.#writeCommand(
        { out: Uint8Array.of(SPI_OP.WRITE_SR, bytes[0], bytes[1]) },
        label,
        t,
        this.timeouts.statusMs,
      );
    }
  }

  /**
   * Clear block protection (BP/TB/SEC/CMP) keeping QE and the rest, only when a protect bit is
   * set; verify the whole field; fall back once to the other SR2 write style; report SRP and
   * hardware locks as FLASH_LOCKED.
   */
  async unprotect(): Promise<UnprotectOutcome> {
    const part = this.part;
    const before = await this.readStatus();
    const sr = srWordOf(before);
    if (!needsUnprotect(part, sr)) return { before, after: before, wrote: false };
    const lock = diagnoseLock(part, sr);
    if (lock.locked) throw lockedError(lock.reason, describeStatus(part, sr, this.size));
    const want = unprotectedValue(part, sr);
    const wantBytes = before.map((_, i) => (want >>> (8 * i)) & 0xff);
    await this.writeStatus(wantBytes);
    let after = await this.readStatus();
    if (needsUnprotect(part, srWordOf(after))) {
      const alt = part.sr2Write === "separate"
        ? "combined"
        : part.sr2Write === "combined" && part.srWriteOpcodes.includes(SPI_OP.WRITE_SR2)
        ? "separate"
        : null;
      if (alt) {
        await this.writeStatus(wantBytes, alt);
        after = await this.readStatus();
      }
    }
    const got = srWordOf(after);
    if (needsUnprotect(part, got)) {
      const why = decodeStatus(part, got).srp0
        ? diagnoseLock(part, got, "low").reason
        : "the flash ignored the status write";
      throw lockedError(
        `protection could not be cleared: wrote ${hex(want, 2 * before.length)}, read back ${
          hex(got, 2 * before.length)
        } (${why})`,
        describeStatus(part, got, this.size),
      );
    }
    return { before, after, wrote: true };
  }

  /** Poll RDSR until WIP clears; `typicalMs` sets the poll cadence, `timeoutMs` the limit. */
  async waitIdle(what: string, typicalMs: number, timeoutMs: number): Promise<number> {
    const clock = this.spi.clock;
    const start = clock.now();
    const interval = Math.max(0.05, Math.min(1000, typicalMs / 10));
    if (typicalMs >= 20) await clock.sleep(typicalMs * 0.8);
    for (;;) {
      const [rx] = await this.spi.transfer([RDSR1]);
      if (!(rx[1] & WIP)) return rx[1];
      if (clock.now() - start > timeoutMs) {
        throw new FlashError(
          "TIMEOUT",
          `flash still busy ${Math.round(clock.now() - start)} ms after ${what}`,
          "power-cycle the chip and retry; if it repeats the flash may be worn out",
        );
      }
      await clock.sleep(interval);
    }
  }

  /** WREN, RDSR (WEL must be set), the command, RDSR; then wait for WIP to clear. */
  async #writeCommand(cmd: SpiFrame, what: string, typicalMs: number, timeoutMs: number): Promise<void> {
    for (let attempt = 1;; attempt++) {
      const steps: SpiStep[] = [WREN, RDSR1, { frame: cmd }];
      if (typicalMs < 2) steps.push({ delayUs: Math.ceil(typicalMs * 1000) });
      steps.push(RDSR1);
      const rx = await this.spi.transfer(steps);
      const afterWren = rx[1][1];
      const afterCmd = rx[3][1];
      if (afterWren & WIP) {
        await this.waitIdle(what, typicalMs, timeoutMs);
        continue;
      }
      if (!(afterWren & WEL)) {
        if (attempt < 3) continue;
        throw new FlashError(
          "WRITE_FAILED",
          `the flash did not set WEL after WREN (status ${hex(afterWren, 2)}) before ${what}`,
          "check MOSI/CS wiring and that nothing else drives the SPI lines; power-cycle the chip",
        );
      }
      if (afterCmd & WIP) await this.waitIdle(what, typicalMs, timeoutMs);
      return;
    }
  }

  #checkRange(addr: number, len: number): void {
    if (addr < 0 || len < 0 || addr + len > this.size || addr + len > 0x1000000) {
      throw new FlashError(
        "BAD_RANGE",
        `${hex(addr, 6)}+${hex(len, 6)} is outside the ${this.size / 1024} KiB flash`,
        "check --addr/--size against the flash size",
      );
    }
  }
}

function lockedError(reason: string, status: string): FlashError {
  return new FlashError(
    "FLASH_LOCKED",
    `${reason}; ${status}`,
    "a power-cycle lock (SRP1) clears when the chip loses power; a hardware lock (SRP0) needs WP# high; " +
      "a permanent lock cannot be cleared: only the unprotected range can be written",
  );
}
