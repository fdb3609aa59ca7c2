/**
 * A virtual Beken chip behind its boot UART: flash, efuse, chip-ID registers, CEN/reset, the
 * boot window after reset, the loader personality and the running application's reactions
 * (OpenBeken's `reboot` command, LibreTiny's reboot on a link check).
 *
 * @module
 */

import type { ChipProfile } from "../core/chips/profiles.ts";
import { RequestParser } from "../core/uart/parser.ts";
import type { Personality } from "../core/chips/personality.ts";
import { DEFAULT_TIMING, type TimingModel, wireMs } from "../core/timing.ts";
import type { TxChunk, UartDevice } from "./uart_device.ts";
import { handleRequest, type LoaderFlash, type LoaderHost } from "./loader.ts";
import { type LoaderFamily, loaderFamilyOf, type SrLockQuirk, srLockQuirkOf } from "../core/chips/loaders.ts";
import { realBaud } from "../core/uart/baud.ts";

/** Registers of the efuse controller (docs/uart.md §4.16). */
export const EFUSE_CTRL = 0x00800074;
/** Efuse read-out register: bit 8 = valid, bits 0..7 = byte. */
export const EFUSE_OPTR = 0x00800078;
import { BOOT_BAUD, type BootCheck, bootCheck, efuseKey } from "./boot.ts";

/** SCTRL chip-ID register. */
export const CHIP_ID_REG = 0x00800000;
/** Device-ID register of the BK7236/BK7258 family. */
export const DEVICE_ID_REG = 0x44010004;

/** What the running application does with bytes on UART1 when the loader is not listening. */
export type AppBehaviour = "openbeken" | "libretiny" | "silent";

/** Chip power/boot state. */
export type BootState = "reset" | "window" | "loader" | "app" | "off";

/** Options of a {@link BekenChip}. */
export interface BekenChipOptions {
  /** The chip to emulate. */
  profile: ChipProfile;
  /** Its flash. */
  flash: LoaderFlash;
  /** Efuse bytes (32 on chips that have them). */
  efuse: Uint8Array;
  /** Overrides of the timing model. */
  timing?: Partial<TimingModel>;
  /** Reaction of the application to UART text; default OpenBeken's `reboot` command. */
  app?: AppBehaviour;
  /** Unpowered / unwired chip: never answers. */
  silent?: boolean;
  /** Called for each decoded request and its reply (the emulator's `-v` log). */
  onCommand?: (name: string, request: Uint8Array | null, reply: Uint8Array | null, at: number) => void;
  /** Changes to the chip's loader family (tests and the fuzzer: a smaller ring buffer, say). */
  loader?: Partial<LoaderFamily>;
}

/** What the loader did with bytes it could not take (the emulator's `-v` log and tests). */
export interface RxLoss {
  /** Bytes discarded while busy (`drop` loaders). */
  dropped: number;
  /** Bytes lost to a ring-buffer overflow (`ring` loaders). */
  overflowed: number;
  /** Partial frames abandoned after the family's frame timeout. */
  abandoned: number;
}

/**
 * The chip. Time is passed in by the caller (the virtual wire or the PTY/TCP server); the
 * chip itself never reads a clock.
 */
export class BekenChip implements UartDevice, LoaderHost {
  /** The chip emulated. */
  readonly profile: ChipProfile;
  /** Its flash. */
  readonly flash: LoaderFlash;
  /** eFuse bytes. */
  readonly efuse: Uint8Array;
  /** The timing the chip charges. */
  readonly timing: TimingModel;
  readonly lock = { protectFlag: false };
  /** The loader family this chip's loader follows (core/chips/loaders.ts). */
  readonly family: LoaderFamily;
  readonly srLockQuirk: SrLockQuirk | null;
  /** Bytes the loader could not take, since the chip was made. */
  readonly loss: RxLoss = { dropped: 0, overflowed: 0, abandoned: 0 };
  /** What the application does with UART text. */
  app: AppBehaviour;
  /** An unpowered chip that never answers. */
  silent: boolean;
  /** Called with every command the loader handles. */
  onCommand?: BekenChipOptions["onCommand"];
  /** Fault injection: replaces a reply on its way out (emulator/faults/). */
  rewriteReply?: (name: string, request: Uint8Array | null, reply: Uint8Array) => Uint8Array | null;

  #state: BootState = "reset";
  #resetAt = 0;
  #cenLow = false;
  #busyUntil = 0;
  #bauds: { at: number; baud: number }[] = [{ at: -Infinity, baud: 115200 }];
  #regs = new Map<number, number>();
  #efuseCtrl = 0;
  #efuseOptr = 0;
  #efusePending = false;
  #parser = new RequestParser();
  #text = "";
  /** Time the last byte reached the loader's parser. */
  #lastRx = -Infinity;
  /** Frames queued in the ring buffer: when the loader takes each up, and its size. */
  #ring: { at: number; bytes: number }[] = [];
  #bootSaid = false;

  /** A chip as `opts` describe it, held in reset until powered. */
  constructor(opts: BekenChipOptions) {
    this.profile = opts.profile;
    this.family = { ...loaderFamilyOf(opts.profile), ...opts.loader };
    this.srLockQuirk = srLockQuirkOf(opts.profile);
    this.flash = opts.flash;
    this.efuse = opts.efuse;
    this.timing = { ...DEFAULT_TIMING, ...opts.timing };
    this.app = opts.app ?? "openbeken";
    this.silent = opts.silent ?? false;
    this.onCommand = opts.onCommand;
    this.reset(0);
  }

  /** The loader's protocol. */
  get personality(): Personality {
    return this.profile.personality;
  }
  /** Whether CheckCRC's end address is inclusive. */
  get crcEndInclusive(): boolean {
    return this.profile.crcEndInclusive;
  }
  /** End of the window the loader refuses to touch (0: none). */
  get loaderProtectedEnd(): number {
    return this.profile.loaderProtectedEnd;
  }
  /** Whether CheckCRC re-protects the flash (BASIC loaders). */
  get crcProtectLock(): boolean {
    return this.profile.crcProtectLock;
  }
  /** What ReadBootVersion answers, or null where unsupported. */
  get bootVersion(): string | null {
    return this.profile.bootVersion;
  }
  /** Chip-side CRC speed (bytes/s). */
  get crcBytesPerSec(): number {
    return this.timing.crcBytesPerSec;
  }

  /** Boot state at time `t`. */
  stateAt(t: number): BootState {
    if (this.silent || this.#cenLow) return "off";
    if (this.#state === "reset") {
      const open = this.#resetAt + this.timing.resetToWindowMs;
      if (t < open) return "reset";
      if (t < open + this.timing.bootWindowMs) return "window";
      return "app";
    }
    return this.#state;
  }

  baudAt(t: number): number {
    let b = 115200;
    for (const s of this.#bauds) if (s.at <= t) b = s.baud;
    return b;
  }

  reset(now: number): void {
    this.#state = "reset";
    this.#resetAt = now;
    this.#busyUntil = now;
    this.#bauds = [{ at: -Infinity, baud: 115200 }];
    this.#parser.reset();
    this.#text = "";
    this.#ring = [];
    this.#lastRx = -Infinity;
    this.#bootSaid = false;
    this.lock.protectFlag = false;
  }

  /**
   * The boot line, sent unprompted when the boot window closes without a host linking (the
   * application starts) at or before `until`; once per boot.
   */
  spontaneous(until: number): TxChunk[] {
    if (this.#bootSaid || this.#state !== "reset" || this.silent || this.#cenLow || this.app === "silent") {
      return [];
    }
    const appAt = this.#resetAt + this.timing.resetToWindowMs + this.timing.bootWindowMs;
    if (appAt > until) return [];
    this.#bootSaid = true;
    const b = this.bootCheck();
    return b.line ? [{ at: appAt, baud: BOOT_BAUD, data: new TextEncoder().encode(`${b.line}\r\n`) }] : [];
  }

  /** What the boot after the last reset does with the current flash and efuse (emulator/boot.ts). */
  bootCheck(): BootCheck {
    return bootCheck(this.profile, efuseKey(this.profile, this.efuse), (a, n) => this.flash.read(a, n));
  }

  signals(lines: { dtr: boolean; rts: boolean }, now: number): void {
    // auto-reset wiring: RTS drives CEN (asserted = held in reset)
    if (lines.rts && !this.#cenLow) this.#cenLow = true;
    else if (!lines.rts && this.#cenLow) {
      this.#cenLow = false;
      this.reset(now);
    }
  }

  /** Hold CEN low (true) or release it (false), as the CH341A's D2 does. */
  setCen(low: boolean, now: number): void {
    this.signals({ dtr: false, rts: low }, now);
  }

  /**
   * Bytes from the host; the last of them finished arriving at `now`, the others one byte time
   * apart before it. What the loader makes of bytes that arrive while it is busy (from the end
   * of a request until its reply has left) follows its family: a `drop` loader discards them,
   * a `ring` loader queues them in a buffer of fixed size (bytes beyond it are lost). A partial
   * frame is abandoned after the family's frame timeout, or never.
   */
  receive(data: Uint8Array, now: number): TxChunk[] {
    const state = this.stateAt(now);
    if (state === "off" || state === "reset") return [];
    if (state === "app") return this.#app(data, now);
    const byteMs = wireMs(1, this.baudAt(now));
    const n = data.length;
    const arrival = (i: number) => now - (n - 1 - i) * byteMs;
    const out: TxChunk[] = [];
    let i = 0;
    while (i < n) {
      // bytes that arrive while the loader is busy
      if (arrival(i) < this.#busyUntil) {
        const j = Math.min(n, Math.max(i + 1, Math.ceil((this.#busyUntil - now) / byteMs + n - 1 - 1e-9)));
        if (this.family.busy.kind === "drop") {
          this.loss.dropped += j - i;
          i = j;
          continue;
        }
        const room = Math.max(0, this.family.busy.size - this.#ringLevel(arrival(i)));
        const kept = Math.min(room, j - i);
        this.loss.overflowed += j - i - kept;
        const from = i;
        if (kept > 0) this.#feed(data.subarray(i, i + kept), (k) => arrival(from + k), out, true);
        i = j;
        continue;
      }
      // the loader is free: the bytes go straight to its parser, up to the end of the next frame
      const from = i;
      i += this.#feed(data.subarray(i), (k) => arrival(from + k), out, false);
    }
    // keep the parser from hoarding a stream that never frames
    if (this.#parser.pending > 0x2000) this.#parser.reset();
    return out;
  }

  /** Bytes in the ring buffer at time `t` (frames not yet taken up, plus a partial frame). */
  #ringLevel(t: number): number {
    this.#ring = this.#ring.filter((f) => f.at > t);
    return this.#ring.reduce((sum, f) => sum + f.bytes, 0) + this.#parser.pending;
  }

  /**
   * Hand `bytes` (byte `k` arrived at `arrival(k)`) to the parser and answer the frames they
   * complete. A free loader (`queued` false) stops after a frame that keeps it busy past the
   * next byte's arrival, and returns how many bytes it took; queued bytes (ring) are all parsed,
   * each frame taken up when the loader is free again.
   */
  #feed(bytes: Uint8Array, arrival: (k: number) => number, out: TxChunk[], queued: boolean): number {
    const total = bytes.length;
    const timeout = this.family.frameTimeoutMs;
    if (timeout !== null && this.#parser.pending > 0 && arrival(0) - this.#lastRx > timeout) {
      this.loss.abandoned++;
      this.#parser.reset();
    }
    this.#parser.push(bytes);
    this.#lastRx = arrival(total - 1);
    for (let req = this.#parser.next(); req; req = this.#parser.next()) {
      // the frame's last byte is the one before what the parser still holds of this chunk
      const rest = Math.min(this.#parser.pending, total);
      const endAt = arrival(total - rest - 1);
      const st = this.stateAt(endAt);
      if (st === "window") {
        if (req.kind !== "short" || req.code !== 0x00) continue;
        this.#state = "loader";
      } else if (st !== "loader") break;
      const start = Math.max(endAt, this.#busyUntil);
      if (queued && start > endAt) {
        this.#ring.push({ at: start, bytes: req.payload.length + (req.kind === "short" ? 5 : 8) });
      }
      const r = handleRequest(this, req, start, this.family.replyMs);
      const baud = r.baud ?? this.baudAt(r.at);
      // the loader sends its reply before it takes up the next request
      this.#busyUntil = Math.max(this.#busyUntil, r.at + (r.bytes ? wireMs(r.bytes.length, baud) : 0));
      this.onCommand?.(r.name, req.payload, r.bytes, start);
      const bytes = r.bytes && this.rewriteReply ? this.rewriteReply(r.name, req.payload, r.bytes) : r.bytes;
      if (bytes) out.push({ at: r.at, baud, data: bytes });
      if (!queued && rest > 0 && this.#busyUntil > arrival(total - rest)) {
        // the rest of the chunk arrives while the loader is busy: the caller decides its fate
        this.#parser.reset();
        this.#parser.skipped -= rest;
        return total - rest;
      }
    }
    return total;
  }

  #app(data: Uint8Array, now: number): TxChunk[] {
    if (this.app === "silent") return [];
    // the boot line leaves once the app runs; the device model only transmits when handed bytes
    const out: TxChunk[] = [];
    if (!this.#bootSaid) {
      this.#bootSaid = true;
      const b = this.bootCheck();
      if (b.line) out.push({ at: now, baud: BOOT_BAUD, data: new TextEncoder().encode(`${b.line}\r\n`) });
    }
    this.#text = (this.#text + new TextDecoder("latin1").decode(data)).slice(-64);
    if (this.app === "openbeken" && /reboot\r?\n/.test(this.#text)) this.reset(now + 50);
    if (this.app === "libretiny" && this.#text.includes("\x01\xe0\xfc\x01\x00")) this.reset(now + 50);
    return out;
  }

  /** A register as ReadReg reads it. */
  readReg(addr: number): number {
    switch (addr >>> 0) {
      case CHIP_ID_REG:
        return this.profile.chipId ?? 0;
      case DEVICE_ID_REG:
        return this.profile.deviceId ?? 0;
      case EFUSE_CTRL: {
        const v = this.#efuseCtrl;
        if (this.#efusePending) {
          // the read completes one poll later: bit 0 clears, the byte appears in OPTR
          this.#efusePending = false;
          const a = (this.#efuseCtrl >>> 8) & 0x1f;
          this.#efuseCtrl &= ~1;
          this.#efuseOptr = a < this.efuse.length ? 0x100 | this.efuse[a] : 0;
        }
        return v;
      }
      case EFUSE_OPTR:
        return this.#efuseOptr;
      default:
        return this.#regs.get(addr >>> 0) ?? 0;
    }
  }

  /** A register write as WriteReg does it. */
  writeReg(addr: number, value: number): void {
    if (addr >>> 0 === EFUSE_CTRL) {
      this.#efuseCtrl = value >>> 0;
      this.#efusePending = (value & 1) === 1;
      return;
    }
    this.#regs.set(addr >>> 0, value >>> 0);
  }

  reboot(at: number): void {
    this.reset(at + 1);
  }

  /** The UART switches to what its divisor makes of `baud` (26 MHz / an integer). */
  switchBaud(baud: number, at: number): void {
    // a divisor register cannot hold a rate of 0; nor can the UART run faster than its clock
    if (!(baud > 0)) return;
    this.#bauds.push({
      at,
      baud: Math.min(realBaud(baud, this.family.uartClockHz), this.family.uartClockHz),
    });
  }
}
