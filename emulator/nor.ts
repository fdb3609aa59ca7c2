/**
 * A faithful SPI NOR flash model (docs/spi-ch341.md C.3 and the C.6 checklist): erased bytes read
 * 0xFF, programming ANDs, a page program wraps inside its 256-byte page, erases align down,
 * addresses wrap at the end of the array, status registers have read-only, sticky and
 * lock-protected bits, and block protection silently drops program/erase like real parts.
 *
 * Two faces share one state:
 * - a high-level face for the emulated UART loader, which is itself the SPI master
 *   (`read`, `program`, `eraseRange`, `readSr`, `writeSr`);
 * - a byte-level SPI slave face (`select`, `exchange`, `deselect`) for SPI mode, where a
 *   command executes at the CS rising edge and WIP holds off everything but status reads.
 *
 * Times are milliseconds on the caller's clock, passed as `now`.
 *
 * Longer than 400 lines because both faces are one part: the byte-level commands and the
 * high-level calls read and change the same array, status word, write latch and busy time, and
 * every rule (protection, page wrap, WIP) must hold the same way for both; split, the state
 * would be passed between modules that could then disagree.
 *
 * @example
 * ```ts
 * const nor = new NorFlash({ id: [0xeb, 0x60, 0x15] });
 * nor.srWord = 0x4004; // protected as Beken firmware leaves it
 * nor.program(0x1f0000, new Uint8Array([0x12]), 0).doneAt; // 0.4
 * ```
 *
 * @module
 */

import { ERASE_SIZE, type EraseKind, eraseKindOf, SPI_OP } from "../core/spi/opcodes.ts";
import { type FlashPart, flashPartFor } from "../core/spi/jedec.ts";
import { type ByteRange, decodeStatus, intersects, protectedRange } from "../core/spi/status.ts";
import { DEFAULT_TIMING, type TimingModel } from "../core/timing.ts";

/** Typical operation times in milliseconds. */
export interface NorTiming {
  /** Page program (up to 256 bytes). */
  pageProgramMs: number;
  /** 4 KiB sector erase (0x20). */
  sector4kMs: number;
  /** 32 KiB block erase (0x52). */
  block32kMs: number;
  /** 64 KiB block erase (0xD8). */
  block64kMs: number;
  /** Chip erase (0x60 / 0xC7). */
  chipEraseMs: number;
  /** Non-volatile status-register write. */
  wrsrMs: number;
}

/** The flash times of a {@link TimingModel}, in the NOR model's terms. */
export function norTimingOf(model: TimingModel): NorTiming {
  return {
    pageProgramMs: model.pageProgramMs,
    sector4kMs: model.sectorEraseMs,
    block32kMs: model.block32EraseMs,
    block64kMs: model.blockEraseMs,
    chipEraseMs: model.chipEraseMs,
    wrsrMs: model.srWriteMs,
  };
}

/**
 * W25Q32JV typical values, taken from the one timing model (core/timing.ts, which cites the
 * datasheet). No other Beken-module part has published numbers in our sources, so this is
 * every part's default.
 */
export const W25Q32JV_TYPICAL: Readonly<NorTiming> = Object.freeze(norTimingOf(DEFAULT_TIMING));

/** Erase granularity of the high-level face. */
export type { EraseKind };

/** Construction options. */
export interface NorFlashOptions {
  /** The part; alternatively `id`. Unknown IDs get a generic Winbond-style part. */
  part?: FlashPart;
  /** JEDEC ID in wire order (default EN25QH16B, 1C 70 15). */
  id?: readonly number[];
  /** Overrides of {@link W25Q32JV_TYPICAL}. */
  timing?: Partial<NorTiming>;
  /** Initial status word (SR1 | SR2 << 8 | SR3 << 16); WIP and WEL are ignored. */
  sr?: number;
  /** Level of the WP# pin: true = high (default). */
  wpHigh?: boolean;
  /** A one-byte `01 SR1` clears SR2 (older generations); default from the part. */
  oneByteWrsrClearsSr2?: boolean;
  /** MISO during the opcode byte and for commands with nothing to say (default 0xFF). */
  idleMiso?: number;
  /** Initial content (copied; shorter content is padded with 0xFF). */
  data?: Uint8Array;
}

/** The whole persistent state, as a plain object. */
export interface NorSnapshot {
  /** JEDEC ID, wire order. */
  jedecId: number[];
  /** Status word without WIP/WEL. */
  sr: number;
  /** The whole array. */
  data: Uint8Array;
}

/** Result of a program or erase on the high-level face. */
export interface NorOpResult {
  /** When the flash is idle again. */
  doneAt: number;
  /** Some byte changed value. */
  changed: boolean;
  /** Block protection dropped the operation (data unchanged, as real parts do). */
  blocked: boolean;
}

const PAGE = 256;

/** An SPI NOR flash chip. */
export class NorFlash {
  /** The part this chip models. */
  readonly part: FlashPart;
  /** Operation times. */
  readonly timing: NorTiming;
  /** WP# pin level (true = high); settable to model a strapped or driven pin. */
  wpHigh: boolean;
  readonly #data: Uint8Array;
  readonly #oneByteClearsSr2: boolean;
  readonly #idleMiso: number;
  #sr: number;
  #wel = false;
  #ewsr = false;
  #busyUntil = Number.NEGATIVE_INFINITY;
  #welClearsWhenIdle = false;
  #frame: number[] | null = null;
  #frameIgnored = false;

  /** A flash as `opts` describe it (default: an erased EN25QH16B). */
  constructor(opts: NorFlashOptions = {}) {
    this.part = opts.part ?? flashPartFor(opts.id ?? [0x1c, 0x70, 0x15]);
    this.timing = { ...W25Q32JV_TYPICAL, ...opts.timing };
    this.wpHigh = opts.wpHigh ?? true;
    this.#oneByteClearsSr2 = opts.oneByteWrsrClearsSr2 ?? this.part.oneByteWrsrClearsSr2;
    this.#idleMiso = opts.idleMiso ?? 0xff;
    this.#data = new Uint8Array(this.part.size).fill(0xff);
    if (opts.data) this.#data.set(opts.data.subarray(0, this.part.size));
    this.#sr = this.#storable(opts.sr ?? 0);
  }

  /** JEDEC ID, wire order. */
  get jedecId(): Uint8Array {
    return Uint8Array.from(this.part.id);
  }

  /** Array size in bytes. */
  get size(): number {
    return this.#data.length;
  }

  /**
   * The status word without WIP/WEL. Setting it bypasses locks and sticky bits (test setup:
   * `nor.srWord = 0x4004`).
   */
  get srWord(): number {
    return this.#sr;
  }
  set srWord(value: number) {
    this.#sr = this.#storable(value);
  }

  /** The live status word at `now`, WIP and WEL included. */
  srAt(now: number): number {
    this.#settle(now);
    return (this.#sr | (now < this.#busyUntil ? 1 : 0) | (this.#wel ? 2 : 0)) >>> 0;
  }

  /** Whether an operation is still running at `now`. */
  busyAt(now: number): boolean {
    return now < this.#busyUntil;
  }

  /** The range block protection currently covers. */
  protectedRange(): ByteRange {
    return protectedRange(this.part, this.#sr, this.size);
  }

  // ---- high-level face -------------------------------------------------------------------

  /** Read `len` bytes from `addr`, wrapping at the end of the array. */
  read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let a = this.#wrap(addr);
    for (let i = 0; i < len;) {
      const n = Math.min(len - i, this.size - a);
      out.set(this.#data.subarray(a, a + n), i);
      i += n;
      a = 0;
    }
    return out;
  }

  /**
   * Erase the 4K/32K/64K unit containing `addr` (aligned down), or the whole chip. Starts when
   * a running operation finishes. A protected unit (any protection at all for "chip") is left
   * untouched.
   */
  eraseRange(addr: number, kind: EraseKind, now: number): NorOpResult {
    const start = Math.max(now, this.#busyUntil);
    const r = this.#erase(addr, kind);
    const doneAt = r.blocked ? start : start + this.#eraseTime(kind);
    if (!r.blocked) this.#busyUntil = doneAt;
    return { doneAt, ...r };
  }

  /**
   * Program `data` at `addr` as a loader would: one page program per 256-byte page touched,
   * each ANDed into the array and dropped when its page is protected.
   */
  program(addr: number, data: Uint8Array, now: number): NorOpResult {
    let t = Math.max(now, this.#busyUntil);
    let changed = false;
    let blocked = false;
    let a = this.#wrap(addr);
    for (let i = 0; i < data.length;) {
      const n = Math.min(data.length - i, PAGE - (a % PAGE));
      const r = this.#pageProgram(a, data.subarray(i, i + n));
      changed ||= r.changed;
      blocked ||= r.blocked;
      if (!r.blocked) t += this.timing.pageProgramMs;
      i += n;
      a = this.#wrap(a + n);
    }
    this.#busyUntil = Math.max(this.#busyUntil, t);
    return { doneAt: t, changed, blocked };
  }

  /** Read a status register by opcode (0x05, 0x35, 0x15); 0xFF when the part has no such register. */
  readSr(opcode: number, now = Number.POSITIVE_INFINITY): number {
    const index = this.part.srRead.indexOf(opcode);
    if (index < 0) return 0xff;
    const live = Number.isFinite(now) ? this.srAt(now) : this.#sr;
    return (live >>> (8 * index)) & 0xff;
  }

  /**
   * Write status registers by opcode (0x01 with 1–3 bytes, 0x31, 0x11) as if preceded by
   * WREN. `accepted` is false when the registers are locked (SRP) or the opcode unsupported.
   */
  writeSr(opcode: number, bytes: Uint8Array, now: number): { doneAt: number; accepted: boolean } {
    const start = Math.max(now, this.#busyUntil);
    if (!this.#applySrWrite(opcode, bytes)) return { doneAt: start, accepted: false };
    this.#busyUntil = start + this.timing.wrsrMs;
    return { doneAt: this.#busyUntil, accepted: true };
  }

  /** The whole state as a plain object. */
  snapshot(): NorSnapshot {
    return { jedecId: Array.from(this.part.id), sr: this.#sr, data: this.#data.slice() };
  }

  /** Restore a {@link snapshot}; throws when it belongs to another part size. */
  restore(s: NorSnapshot): void {
    if (s.data.length !== this.size) {
      throw new RangeError(`snapshot holds ${s.data.length} bytes, this flash has ${this.size}`);
    }
    this.#data.set(s.data);
    this.#sr = this.#storable(s.sr);
    this.#wel = false;
    this.#ewsr = false;
    this.#frame = null;
  }

  /** The chip around the flash was reset: an open command is dropped, WEL cleared. Data and busy stay. */
  reset(now: number): void {
    this.#settle(now);
    this.#frame = null;
    this.#wel = false;
    this.#ewsr = false;
  }

  /**
   * Power cycle: transient state cleared, and the power-cycle lock (SRP1 = 1, SRP0 = 0) lifted
   * **[inference from flashrom's "power-cycle" mode]**.
   */
  powerCycle(): void {
    this.#frame = null;
    this.#wel = false;
    this.#ewsr = false;
    this.#welClearsWhenIdle = false;
    this.#busyUntil = Number.NEGATIVE_INFINITY;
    const f = decodeStatus(this.part, this.#sr);
    if (f.srp1 && !f.srp0 && this.part.layout.srp1Bit !== null) {
      this.#sr &= ~(1 << this.part.layout.srp1Bit);
    }
  }

  // ---- byte-level SPI slave face --------------------------------------------------------

  /** CS# falls. */
  select(now: number): void {
    this.#settle(now);
    this.#frame = [];
    this.#frameIgnored = false;
  }

  /** One byte clocked both ways while selected; returns MISO. Unselected: 0xFF, MOSI ignored. */
  exchange(mosi: number, now: number): number {
    const frame = this.#frame;
    if (frame === null) return 0xff;
    const miso = frame.length === 0 || this.#frameIgnored ? this.#idleMiso : this.#respond(frame, now);
    frame.push(mosi & 0xff);
    if (frame.length === 1 && this.busyAt(now) && !this.#isStatusRead(frame[0])) this.#frameIgnored = true;
    return miso;
  }

  /** CS# rises: the command executes now. */
  deselect(now: number): void {
    const frame = this.#frame;
    this.#frame = null;
    if (frame === null || frame.length === 0 || this.#frameIgnored) return;
    this.#settle(now);
    this.#execute(frame, now);
  }

  // ---- internals ------------------------------------------------------------------------

  #isStatusRead(op: number): boolean {
    return op === SPI_OP.READ_SR1 || op === SPI_OP.READ_SR2 || op === SPI_OP.READ_SR3;
  }

  #respond(frame: number[], now: number): number {
    const op = frame[0];
    const i = frame.length;
    const addr = () => ((frame[1] << 16) | (frame[2] << 8) | frame[3]) >>> 0;
    const devId = (this.part.id[2] - 1) & 0xff; // REMS/RES device ID: capacity - 1 [inference]
    switch (op) {
      case SPI_OP.READ_ID:
        return i <= 3 ? this.part.id[i - 1] : this.#idleMiso;
      case SPI_OP.READ_MFR_DEVICE_ID: {
        if (i < 4) return this.#idleMiso;
        const pair = (addr() & 1) === 0 ? [this.part.id[0], devId] : [devId, this.part.id[0]];
        return pair[(i - 4) % 2];
      }
      case SPI_OP.RELEASE_POWER_DOWN:
        return i < 4 ? this.#idleMiso : devId;
      case SPI_OP.READ_SR1:
      case SPI_OP.READ_SR2:
      case SPI_OP.READ_SR3:
        return this.readSr(op, now);
      case SPI_OP.READ:
        return i < 4 ? this.#idleMiso : this.#data[this.#wrap(addr() + i - 4)];
      case SPI_OP.FAST_READ:
        return i < 5 ? this.#idleMiso : this.#data[this.#wrap(addr() + i - 5)];
      default:
        return this.#idleMiso;
    }
  }

  #execute(frame: number[], now: number): void {
    const op = frame[0];
    const len = frame.length;
    const addr = len >= 4 ? ((frame[1] << 16) | (frame[2] << 8) | frame[3]) >>> 0 : 0;
    switch (op) {
      case SPI_OP.WRITE_ENABLE:
        if (len === 1) this.#wel = true;
        return;
      case SPI_OP.WRITE_DISABLE:
        if (len === 1) this.#wel = false;
        return;
      case SPI_OP.VOLATILE_SR_WRITE_ENABLE:
        if (len === 1) this.#ewsr = true;
        return;
      case SPI_OP.WRITE_SR:
      case SPI_OP.WRITE_SR2:
      case SPI_OP.WRITE_SR3: {
        const maxLen = op === SPI_OP.WRITE_SR ? 1 + this.part.srCount : 2;
        if (len < 2 || len > maxLen) return;
        if (!this.#wel && !this.#ewsr) return;
        const volatile = !this.#wel;
        this.#ewsr = false;
        if (!this.#applySrWrite(op, Uint8Array.from(frame.slice(1)))) {
          this.#wel = false;
          return;
        }
        if (!volatile) this.#startBusy(now, this.timing.wrsrMs);
        return;
      }
      case SPI_OP.PAGE_PROGRAM: {
        if (len < 5 || !this.#wel) return;
        const r = this.#pageProgram(addr, Uint8Array.from(frame.slice(4)));
        if (r.blocked) this.#wel = false;
        else this.#startBusy(now, this.timing.pageProgramMs);
        return;
      }
      case SPI_OP.ERASE_4K:
      case SPI_OP.ERASE_32K:
      case SPI_OP.ERASE_64K:
      case SPI_OP.ERASE_CHIP_ALT:
      case SPI_OP.ERASE_CHIP: {
        const kind = eraseKindOf(op)!;
        if (len !== (kind === "chip" ? 1 : 4) || !this.#wel) return;
        const r = this.#erase(addr, kind);
        if (r.blocked) this.#wel = false;
        else this.#startBusy(now, this.#eraseTime(kind));
        return;
      }
    }
  }

  #startBusy(now: number, ms: number): void {
    this.#busyUntil = now + ms;
    this.#welClearsWhenIdle = true;
  }

  #settle(now: number): void {
    if (this.#welClearsWhenIdle && now >= this.#busyUntil) {
      this.#wel = false;
      this.#welClearsWhenIdle = false;
    }
  }

  #wrap(addr: number): number {
    return ((addr % this.size) + this.size) % this.size;
  }

  #eraseTime(kind: EraseKind): number {
    const t = this.timing;
    return kind === "4k"
      ? t.sector4kMs
      : kind === "32k"
      ? t.block32kMs
      : kind === "64k"
      ? t.block64kMs
      : t.chipEraseMs;
  }

  #erase(addr: number, kind: EraseKind): { changed: boolean; blocked: boolean } {
    const range = this.protectedRange();
    let start = 0;
    let len = this.size;
    if (kind === "chip") {
      if (range.end > range.start) return { changed: false, blocked: true };
    } else {
      len = Math.min(ERASE_SIZE[kind], this.size);
      start = this.#wrap(addr) - (this.#wrap(addr) % len);
      if (intersects(range, start, len)) return { changed: false, blocked: true };
    }
    const unit = this.#data.subarray(start, start + len);
    const changed = unit.some((b) => b !== 0xff);
    unit.fill(0xff);
    return { changed, blocked: false };
  }

  /** One page program: bytes land at successive offsets wrapping inside the page, later bytes overwrite earlier ones, then AND. */
  #pageProgram(addr: number, bytes: Uint8Array): { changed: boolean; blocked: boolean } {
    const a = this.#wrap(addr);
    const base = a - (a % PAGE);
    if (intersects(this.protectedRange(), base, PAGE)) return { changed: false, blocked: true };
    const latch = new Uint8Array(PAGE).fill(0xff);
    const first = bytes.length > PAGE ? bytes.length - PAGE : 0;
    for (let i = first; i < bytes.length; i++) latch[(a + i) % PAGE] = bytes[i];
    let changed = false;
    for (let off = 0; off < PAGE; off++) {
      const old = this.#data[base + off];
      const next = old & latch[off];
      if (next !== old) {
        this.#data[base + off] = next;
        changed = true;
      }
    }
    return { changed, blocked: false };
  }

  /** Apply a status write if the registers are not locked; false when ignored. */
  #applySrWrite(op: number, bytes: Uint8Array): boolean {
    const p = this.part;
    if (p.srCount === 0 || !p.srWriteOpcodes.includes(op) || bytes.length === 0) return false;
    const f = decodeStatus(p, this.#sr);
    if (f.srp1 || (f.srp0 && !this.wpHigh)) return false;
    const first = op === SPI_OP.WRITE_SR ? 0 : op === SPI_OP.WRITE_SR2 ? 1 : 2;
    if (first >= p.srCount) return false;
    let proposed = this.#sr;
    let written = 0;
    const count = Math.min(bytes.length, p.srCount - first);
    for (let i = 0; i < count; i++) {
      const shift = 8 * (first + i);
      proposed = (proposed & ~(0xff << shift)) | (bytes[i] << shift);
      written |= 0xff << shift;
    }
    if (op === SPI_OP.WRITE_SR && bytes.length === 1 && p.srCount >= 2 && this.#oneByteClearsSr2) {
      proposed &= ~0xff00;
      written |= 0xff00;
    }
    const ro = p.layout.readOnlyMask;
    const next = (this.#sr & (ro | ~written)) | (proposed & written & ~ro) | (this.#sr & p.layout.stickyMask);
    this.#sr = this.#storable(next);
    return true;
  }

  #storable(value: number): number {
    const width = this.part.srCount === 0 ? 0 : 2 ** (8 * this.part.srCount) - 1;
    return (value & width & ~0x03) >>> 0;
  }
}
