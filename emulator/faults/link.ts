/**
 * A seeded fault decorator for any {@link ByteLink} (flashrom's `fault` programmer, for a
 * UART): it loses, flips, duplicates and invents bytes in both directions, splits and delays
 * received chunks, garbles or ignores baud changes, and can make the adapter vanish. Every
 * fault is recorded with its kind, clock time and detail.
 *
 * @module
 */

import { concat } from "../../core/bytes.ts";
import type { Clock } from "../../core/clock.ts";
import { type ByteLink, LinkClosedError, type ModemSignals } from "../../core/io/link.ts";
import { decodeFields, encodeRequest } from "../../core/uart/codec.ts";
import { RequestParser } from "../../core/uart/parser.ts";
import { commandByKey, COMMANDS } from "../../core/uart/table.ts";
import { FaultDice, type FaultKind, type FaultPlan, FaultRecorder } from "./plan.ts";

/** Requests `tx-retarget` corrupts: those that change flash at an address, and the 4 KiB read. */
const RETARGETED = new Set(["FlashErase", "FlashErase4K", "FlashWrite4K", "FlashWrite", "FlashRead4K"]);

/** The one request `data` holds, if it is one `tx-retarget` applies to. */
function retargetable(data: Uint8Array) {
  if (data.length < 7 || data[0] !== 0x01 || data[1] !== 0xe0 || data[2] !== 0xfc) return null;
  const parser = new RequestParser();
  parser.push(data);
  const frame = parser.next();
  const spec = frame && commandByKey(frame.kind, frame.code);
  if (!frame || !spec || !RETARGETED.has(spec.name) || parser.next()) return null;
  const values = decodeFields(spec.request, frame.payload);
  return values && typeof values.addr === "number" ? { spec, values } : null;
}

/** Options of a {@link FaultyLink}. */
export interface FaultyLinkOptions {
  /** Shared recorder (default: a new one). */
  recorder?: FaultRecorder;
  /** Separates this link's random stream from other injectors on the same plan (default 1). */
  salt?: number;
  /** Sees every write as the host meant it, before any tx fault. */
  onWrite?: (data: Uint8Array, t: number) => void;
}

/**
 * A {@link ByteLink} that injects the faults of a {@link FaultPlan} into another link.
 *
 * @example
 * ```ts
 * import { createVirtualChip } from "../virtual.ts";
 * const v = await createVirtualChip({ chip: "bk7231n" });
 * const link = new FaultyLink(v.link(), { seed: 3, rates: { "rx-flip": 0.05, fragment: 0.5 } });
 * // … use `link` like any port; then:
 * link.recorder.counts(); // { fragment: 41, "rx-flip": 2 }
 * ```
 */
export class FaultyLink implements ByteLink {
  /** The decorated link. */
  readonly inner: ByteLink;
  /** What was injected. */
  readonly recorder: FaultRecorder;
  /** Dice of this injector; set `dice.active = false` to pass bytes through untouched. */
  readonly dice: FaultDice;
  readonly #onWrite?: (data: Uint8Array, t: number) => void;
  #pending: Uint8Array = new Uint8Array(0);
  #baud: number;
  readonly #openedAt: number;
  /** Rates this adapter turned out unable to do (for `baud-ignored`). */
  readonly #unable = new Map<number, boolean>();
  #glitchBytes = 0;
  /** Replies held back by `rx-stale`, released after the host's next write. */
  #late: Uint8Array = new Uint8Array(0);
  #gone = false;
  #closed = false;
  /** A `tx-retarget` also lost its reply: what arrives until the host writes again is lost. */
  #deaf = false;

  /** `inner` with faults from `plan`. */
  constructor(inner: ByteLink, plan: FaultPlan, options: FaultyLinkOptions = {}) {
    this.inner = inner;
    this.recorder = options.recorder ?? new FaultRecorder();
    this.dice = new FaultDice(plan, this.recorder, options.salt ?? 1);
    this.#onWrite = options.onWrite;
    this.#baud = inner.baud;
    this.#openedAt = inner.baud;
  }

  get name(): string {
    return this.inner.name;
  }
  get clock(): Clock {
    return this.inner.clock;
  }
  get hasModemLines(): boolean {
    return this.inner.hasModemLines;
  }
  /** The rate the host believes it set (differs from the inner link's after `baud-ignored`). */
  get baud(): number {
    return this.#baud;
  }

  #record(kind: FaultKind, detail: string): void {
    this.recorder.record(kind, this.clock.now(), detail);
  }

  #alive(op: string): void {
    if (this.#closed) throw new LinkClosedError(this.name, "port closed");
    if (!this.#gone && this.dice.roll("disconnect")) {
      this.#gone = true;
      this.#record("disconnect", `adapter vanished during ${op}`);
    }
    if (this.#gone) throw new LinkClosedError(this.name, "adapter unplugged");
  }

  async write(data: Uint8Array): Promise<void> {
    this.#alive("write");
    this.#onWrite?.(data.slice(), this.clock.now());
    this.#deaf = false;
    let out = data;
    const d = this.dice;
    if (out.length > 0 && d.roll("tx-drop")) {
      const i = d.int(out.length);
      this.#record("tx-drop", `dropped written byte ${i} of ${out.length}`);
      out = Uint8Array.from([...out.subarray(0, i), ...out.subarray(i + 1)]);
    }
    if (out.length > 0 && d.roll("tx-flip")) {
      const i = d.int(out.length);
      const b = d.int(8);
      this.#record("tx-flip", `flipped bit ${b} of written byte ${i} of ${out.length}`);
      out = out === data ? data.slice() : out;
      out[i] ^= 1 << b;
    }
    const target = out.length > 0 ? retargetable(out) : null;
    // reads far outnumber erases and writes: only one read in 16 that draws the fault turns into
    // an erase, so the fault also lands where a job changes flash
    if (target && d.roll("tx-retarget") && (target.spec.name !== "FlashRead4K" || d.int(16) === 0)) {
      const { spec, values } = target;
      const addr = values.addr as number;
      // half the time (by default) the reply is lost too: the case no host can see without comparing
      this.#deaf = d.float() < (d.plan.retargetUnheard ?? 0.5);
      const lost = this.#deaf ? ", and the line lost what came back until the next request" : "";
      if (spec.name === "FlashRead4K") {
        out = encodeRequest(COMMANDS.FlashErase4K, { addr });
        this.#record("tx-retarget", `FlashRead4K at 0x${addr.toString(16)} arrived as FlashErase4K${lost}`);
      } else {
        const moved = (addr ^ (1 << (12 + d.int(9)))) >>> 0;
        out = encodeRequest(spec, { ...values, addr: moved });
        this.#record(
          "tx-retarget",
          `${spec.name} at 0x${addr.toString(16)} arrived for 0x${moved.toString(16)}${lost}`,
        );
      }
    }
    if (d.roll("tx-garbage")) {
      const junk = d.bytes(1 + d.int(16));
      this.#record("tx-garbage", `${junk.length} random bytes before a ${out.length}-byte write`);
      await this.inner.write(junk);
    }
    await this.inner.write(out);
    if (this.#late.length > 0) {
      this.#pending = concat([this.#pending, this.#late]);
      this.#late = new Uint8Array(0);
    }
  }

  async read(max: number, timeoutMs: number): Promise<Uint8Array> {
    this.#alive("read");
    if (this.#pending.length === 0) {
      let wait = timeoutMs;
      const d = this.dice;
      if (d.roll("stall")) {
        const ms = this.dice.plan.stallMs ?? 3000;
        this.#record("stall", `read stalled for ${ms} ms`);
        await this.clock.sleep(Math.min(ms, timeoutMs));
        if (ms >= timeoutMs) return new Uint8Array(0);
        wait -= ms;
      } else if (d.roll("delay")) {
        const ms = d.float() * (this.dice.plan.delayMs ?? 20);
        this.#record("delay", `read delayed by ${ms.toFixed(2)} ms`);
        await this.clock.sleep(Math.min(ms, timeoutMs));
        if (ms >= timeoutMs) return new Uint8Array(0);
        wait -= ms;
      }
      const got = await this.inner.read(65536, wait);
      if (got.length === 0) return got;
      if (this.#deaf) return new Uint8Array(0);
      if (got.length <= 64 && got[0] === 0x04 && got[1] === 0x0e && d.roll("rx-stale")) {
        this.#record("rx-stale", `a ${got.length}-byte reply held back until the next request`);
        this.#late = concat([this.#late, got]);
        return new Uint8Array(0);
      }
      this.#pending = this.#corrupt(got);
    }
    let n = Math.min(max, this.#pending.length);
    if (n > 1 && this.dice.roll("fragment")) {
      const cut = 1 + this.dice.int(n - 1);
      this.#record("fragment", `handed over ${cut} of ${n} bytes`);
      n = cut;
    }
    const out = this.#pending.slice(0, n);
    this.#pending = this.#pending.subarray(n);
    return out;
  }

  /** Apply the received-side faults to one chunk. */
  #corrupt(chunk: Uint8Array): Uint8Array {
    const d = this.dice;
    let b = chunk;
    if (this.#glitchBytes > 0) {
      const n = Math.min(this.#glitchBytes, b.length);
      this.#glitchBytes -= n;
      b = b.slice();
      b.set(d.bytes(n), 0);
      this.#record("baud-glitch", `garbled the first ${n} bytes after a baud change`);
    }
    if (b.length > 0 && d.roll("rx-drop")) {
      const i = d.int(b.length);
      this.#record("rx-drop", `dropped received byte ${i} of ${b.length}`);
      b = Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + 1)]);
    }
    if (b.length > 0 && d.roll("rx-flip")) {
      const i = d.int(b.length);
      const bit = d.int(8);
      this.#record("rx-flip", `flipped bit ${bit} of received byte ${i} of ${b.length}`);
      b = b === chunk ? b.slice() : b;
      b[i] ^= 1 << bit;
    }
    if (b.length > 0 && d.roll("rx-duplicate")) {
      const i = d.int(b.length);
      const n = 1 + d.int(Math.min(16, b.length - i));
      this.#record("rx-duplicate", `received bytes ${i}..${i + n - 1} twice`);
      b = concat([b.subarray(0, i + n), b.subarray(i)]);
    }
    if (d.roll("rx-garbage")) {
      const at = d.int(b.length + 1);
      const junk = d.bytes(1 + d.int(32));
      this.#record("rx-garbage", `${junk.length} random bytes at offset ${at}`);
      b = concat([b.subarray(0, at), junk, b.subarray(at)]);
    }
    return b;
  }

  drain(): Promise<void> {
    this.#alive("drain");
    return this.inner.drain();
  }

  async flushInput(): Promise<void> {
    this.#alive("flushInput");
    this.#pending = new Uint8Array(0);
    await this.inner.flushInput();
  }

  async setBaud(baud: number): Promise<void> {
    this.#alive("setBaud");
    this.#baud = baud;
    if (baud !== this.#openedAt && !this.#unable.has(baud)) {
      this.#unable.set(baud, this.dice.roll("baud-ignored"));
    }
    if (this.#unable.get(baud)) {
      this.#record(
        "baud-ignored",
        `the adapter silently ignored a change to ${baud} baud (stays at ${this.inner.baud})`,
      );
      return;
    }
    await this.inner.setBaud(baud);
    if (this.dice.roll("baud-glitch")) this.#glitchBytes = 1 + this.dice.int(8);
  }

  setSignals(signals: ModemSignals): Promise<void> {
    this.#alive("setSignals");
    return this.inner.setSignals(signals);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#pending = new Uint8Array(0);
    await this.inner.close();
  }
}
