/**
 * A virtual Beken chip behind its boot UART: flash, efuse, chip-ID registers, CEN/reset, the
 * boot window after reset, the loader personality and the running application's reactions
 * (OpenBeken's `reboot` command, LibreTiny's reboot on a link check).
 *
 * @module
 */

import type { ChipProfile } from "../core/chips/profiles.ts";
import { RequestParser } from "../core/uart/parser.ts";
import type { Personality } from "../core/uart/table.ts";
import { DEFAULT_TIMING, type TimingModel, wireMs } from "../core/timing.ts";
import type { TxChunk, UartDevice } from "./uart_device.ts";
import { handleRequest, type LoaderFlash, type LoaderHost } from "./loader.ts";

/** Registers of the efuse controller (uart.md §4.16). */
export const EFUSE_CTRL = 0x00800074;
/** Efuse read-out register: bit 8 = valid, bits 0..7 = byte. */
export const EFUSE_OPTR = 0x00800078;
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
  profile: ChipProfile;
  flash: LoaderFlash;
  /** Efuse bytes (32 on chips that have them). */
  efuse: Uint8Array;
  timing?: Partial<TimingModel>;
  /** Reaction of the application to UART text; default OpenBeken's `reboot` command. */
  app?: AppBehaviour;
  /** Unpowered / unwired chip: never answers. */
  silent?: boolean;
  /** Called for each decoded request and its reply (the emulator's `-v` log). */
  onCommand?: (name: string, request: Uint8Array | null, reply: Uint8Array | null, at: number) => void;
}

/**
 * The chip. Time is passed in by the caller (the virtual wire or the PTY/TCP server); the
 * chip itself never reads a clock.
 */
export class BekenChip implements UartDevice, LoaderHost {
  readonly profile: ChipProfile;
  readonly flash: LoaderFlash;
  readonly efuse: Uint8Array;
  readonly timing: TimingModel;
  readonly lock = { protectFlag: false };
  app: AppBehaviour;
  silent: boolean;
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

  constructor(opts: BekenChipOptions) {
    this.profile = opts.profile;
    this.flash = opts.flash;
    this.efuse = opts.efuse;
    this.timing = { ...DEFAULT_TIMING, ...opts.timing };
    this.app = opts.app ?? "openbeken";
    this.silent = opts.silent ?? false;
    this.onCommand = opts.onCommand;
    this.reset(0);
  }

  get personality(): Personality {
    return this.profile.personality;
  }
  get crcEndInclusive(): boolean {
    return this.profile.crcEndInclusive;
  }
  get loaderProtectedEnd(): number {
    return this.profile.loaderProtectedEnd;
  }
  get crcProtectLock(): boolean {
    return this.profile.crcProtectLock;
  }
  get bootVersion(): string | null {
    return this.profile.bootVersion;
  }
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
    this.lock.protectFlag = false;
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

  receive(data: Uint8Array, now: number): TxChunk[] {
    const state = this.stateAt(now);
    if (state === "off" || state === "reset") return [];
    if (state === "app") return this.#app(data, now);
    this.#parser.push(data);
    const out: TxChunk[] = [];
    for (let req = this.#parser.next(); req; req = this.#parser.next()) {
      const st = this.stateAt(now);
      if (st === "window") {
        if (req.kind !== "short" || req.code !== 0x00) continue;
        this.#state = "loader";
      } else if (st !== "loader") break;
      const start = Math.max(now, this.#busyUntil);
      const r = handleRequest(this, req, start, this.timing.loaderReplyMs);
      const baud = r.baud ?? this.baudAt(r.at);
      // the loader sends its reply before it takes up the next request (timing.ts)
      this.#busyUntil = r.at + (r.bytes ? wireMs(r.bytes.length, baud) : 0);
      this.onCommand?.(r.name, req.payload, r.bytes, start);
      const bytes = r.bytes && this.rewriteReply ? this.rewriteReply(r.name, req.payload, r.bytes) : r.bytes;
      if (bytes) out.push({ at: r.at, baud, data: bytes });
    }
    // keep the parser from hoarding a stream that never frames
    if (this.#parser.pending > 0x2000) this.#parser.reset();
    return out;
  }

  #app(data: Uint8Array, now: number): TxChunk[] {
    if (this.app === "silent") return [];
    this.#text = (this.#text + new TextDecoder("latin1").decode(data)).slice(-64);
    if (this.app === "openbeken" && /reboot\r?\n/.test(this.#text)) this.reset(now + 50);
    if (this.app === "libretiny" && this.#text.includes("\x01\xe0\xfc\x01\x00")) this.reset(now + 50);
    return [];
  }

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

  switchBaud(baud: number, at: number): void {
    this.#bauds.push({ at, baud });
  }
}
