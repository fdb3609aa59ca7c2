/**
 * CH341A as SPI master over raw USB (docs/spi-ch341.md part A), no vendor DLL.
 *
 * The device parses every 32-byte bulk packet on its own: `A8` + up to 31 bytes is an SPI
 * stream (LSB first on the wire, so every byte is bit-reversed both ways), `AB` + sub-commands
 * drives D5..D0 (always all six at once, hence the pin shadow that keeps D2 = CEN where the
 * caller left it and SCK/MOSI/CS driven). A bulk transfer may carry many packets, but only its
 * last packet may be short: a short `A8` packet therefore ends a transfer. Frames whose extra
 * trailing clocks are harmless (reads) are padded to whole packets so that a whole
 * transaction, e.g. a 4 KiB read, fits one OUT transfer; frames that offer padding bytes (a
 * whole-page program repeating its first bytes) are padded with those. IN reads (one short packet per `A8`
 * packet) are queued ahead, up to 32 in flight, like flashrom.
 *
 * @example
 * ```ts
 * import { findCh341a } from "./usb.ts";
 * const spi = await Ch341aSpi.open(await findCh341a(0));
 * const [rx] = await spi.transfer([{ frame: { out: Uint8Array.of(0x9f), read: 3 } }]);
 * ```
 *
 * @module
 */

import { concat } from "../bytes.ts";
import { type Clock, realClock } from "../clock.ts";
import { FlashError } from "../errors.ts";
import { emptySpiStats, frameLength, frameMosi, type SpiMaster, type SpiStats, type SpiStep } from "./spi.ts";
import {
  CH341_BULK_EP,
  CH341_PACKET,
  CMD_I2C_STREAM,
  CMD_SPI_STREAM,
  CMD_UIO_STREAM,
  PIN,
  PINS_IDLE,
  UIO_DELAY,
  UIO_DIR,
  UIO_END,
  UIO_OUT,
} from "./ch341a_protocol.ts";
import { claimCh341a, type UsbDeviceLike, usbFailureDetail } from "./usb.ts";

const SPI_PER_PACKET = CH341_PACKET - 1;
const UIO_PER_PACKET = CH341_PACKET - 2;

const REVERSED = Uint8Array.from({ length: 256 }, (_, b) => {
  let r = 0;
  for (let i = 0; i < 8; i++) r |= ((b >> i) & 1) << (7 - i);
  return r;
});

/** Reverse the bit order of a byte (MSB-first flash ⇄ the CH341's LSB-first wire). */
export function reverseBits(b: number): number {
  return REVERSED[b & 0xff];
}

/** A transaction encoded for the wire. */
export interface Ch341Plan {
  /** Bulk OUT transfers, in order. */
  transfers: Uint8Array<ArrayBuffer>[];
  /** Expected length of each IN packet, in order (one per `A8` packet). */
  inPackets: number[];
  /** Per frame step: SPI bytes clocked (padding included) and the frame's real length. */
  frames: { clocked: number; length: number }[];
  /** Pin state after the transaction. */
  pins: number;
}

/** Encoding knobs. */
export interface Ch341PlanOptions {
  /** Upper bound of one OUT transfer in bytes (rounded down to whole packets). Default 8192. */
  maxOutBytes?: number;
  /** Dummy UIO writes keeping CS high between frames (≈0.75 µs each). Default 2, as flashrom. */
  csHighFillers?: number;
}

/**
 * Encode steps as CH341A packets, starting from `pins` with CS high. Pure.
 *
 * @example
 * ```ts
 * import { PINS_IDLE } from "./ch341a_protocol.ts";
 * const plan = planCh341([{ cen: "low" }], PINS_IDLE);
 * plan.transfers[0]; // AB B3 20
 * ```
 */
export function planCh341(steps: SpiStep[], pins: number, opts: Ch341PlanOptions = {}): Ch341Plan {
  const fillers = opts.csHighFillers ?? 2;
  const packets: Uint8Array<ArrayBuffer>[] = [];
  const inPackets: number[] = [];
  const frames: Ch341Plan["frames"] = [];
  let uio: number[] = [];
  let csJustRaised = false;

  const flushUio = () => {
    for (let i = 0; i < uio.length; i += UIO_PER_PACKET) {
      const subs = uio.slice(i, i + UIO_PER_PACKET);
      packets.push(Uint8Array.from([CMD_UIO_STREAM, ...subs, UIO_END]));
    }
    uio = [];
  };
  const drive = (next: number) => {
    pins = next & 0x3f;
    uio.push(UIO_OUT | pins);
  };

  for (const step of steps) {
    if ("cen" in step) {
      drive(step.cen === "low" ? pins & ~PIN.CEN : pins | PIN.CEN);
      csJustRaised = false;
    } else if ("delayUs" in step) {
      for (let left = Math.ceil(step.delayUs); left > 0; left -= 63) uio.push(UIO_DELAY | Math.min(63, left));
      csJustRaised = false;
    } else {
      const f = step.frame;
      const length = frameLength(f);
      const whole = Math.ceil(length / SPI_PER_PACKET) * SPI_PER_PACKET;
      const padded = !f.tolerant && f.pad !== undefined && whole - length <= f.pad.length;
      const clocked = f.tolerant || padded ? whole : length;
      frames.push({ clocked, length });
      if (clocked === 0) continue;
      if (csJustRaised) { for (let i = 0; i < fillers; i++) uio.push(UIO_OUT | pins); }
      drive(pins & ~PIN.CS0);
      flushUio();
      const mosi = frameMosi(f, clocked);
      if (padded && clocked > length) mosi.set(f.pad!.subarray(0, clocked - length), length);
      for (let i = 0; i < clocked; i += SPI_PER_PACKET) {
        const chunk = mosi.subarray(i, i + SPI_PER_PACKET);
        const pkt = new Uint8Array(chunk.length + 1);
        pkt[0] = CMD_SPI_STREAM;
        for (let j = 0; j < chunk.length; j++) pkt[j + 1] = REVERSED[chunk[j]];
        packets.push(pkt);
        inPackets.push(chunk.length);
      }
      drive(pins | PIN.CS0);
      csJustRaised = true;
    }
  }
  flushUio();
  return { transfers: joinPackets(packets, opts.maxOutBytes ?? 8192), inPackets, frames, pins };
}

/** Concatenate packets into transfers: UIO packets are zero-padded, a short packet ends a transfer. */
function joinPackets(packets: Uint8Array<ArrayBuffer>[], maxOutBytes: number): Uint8Array<ArrayBuffer>[] {
  const maxPackets = Math.max(1, Math.floor(maxOutBytes / CH341_PACKET));
  const out: Uint8Array<ArrayBuffer>[] = [];
  let group: Uint8Array[] = [];
  const emit = () => {
    if (group.length === 0) return;
    const total = group.reduce((n, p) => n + p.length, 0);
    const buf = new Uint8Array(total);
    let o = 0;
    for (const p of group) {
      buf.set(p, o);
      o += p.length;
    }
    out.push(buf);
    group = [];
  };
  packets.forEach((p, i) => {
    const last = i === packets.length - 1;
    let pkt = p;
    if (p[0] === CMD_UIO_STREAM && !last && p.length < CH341_PACKET) {
      pkt = new Uint8Array(CH341_PACKET);
      pkt.set(p);
    }
    group.push(pkt);
    if (pkt.length < CH341_PACKET || group.length >= maxPackets) emit();
  });
  emit();
  return out;
}

/** Driver options. */
export interface Ch341aOptions extends Ch341PlanOptions {
  /** Clock for waits (real by default; the virtual CH341A's clock in the emulator). */
  clock?: Clock;
  /** Name shown to the user. */
  name?: string;
  /** IN transfers kept in flight. Default 32. */
  inFlight?: number;
}

/** A CH341A SPI master. */
export class Ch341aSpi implements SpiMaster {
  readonly name: string;
  readonly clock: Clock;
  readonly stats: SpiStats = emptySpiStats();
  readonly #dev: UsbDeviceLike;
  readonly #opts: Ch341aOptions;
  #pins = PINS_IDLE;
  #closed = false;

  private constructor(dev: UsbDeviceLike, opts: Ch341aOptions) {
    this.#dev = dev;
    this.#opts = opts;
    this.clock = opts.clock ?? realClock;
    this.name = opts.name ?? "ch341a";
  }

  /**
   * Claim the device and initialise it: `AA 61 00` (stream engine, single SPI), then
   * `AB B7 7F 20` (D0–D5 outputs: CS high, CEN high).
   */
  static async open(dev: UsbDeviceLike, opts: Ch341aOptions = {}): Promise<Ch341aSpi> {
    await claimCh341a(dev);
    const spi = new Ch341aSpi(dev, opts);
    await spi.#out(Uint8Array.of(CMD_I2C_STREAM, 0x61, 0x00));
    await spi.#out(Uint8Array.of(CMD_UIO_STREAM, UIO_OUT | PINS_IDLE, UIO_DIR | 0x3f, UIO_END));
    return spi;
  }

  /** The pin shadow (D5..D0). */
  get pins(): number {
    return this.#pins;
  }

  async transfer(steps: SpiStep[]): Promise<Uint8Array[]> {
    if (this.#closed) throw new FlashError("USB", `${this.name} is closed`, "reopen the adapter");
    const plan = planCh341(steps, this.#pins, this.#opts);
    this.#pins = plan.pins;
    this.stats.transactions++;
    const replies: Uint8Array[] = new Array(plan.inPackets.length);
    let next = 0;
    let failed = false;
    const reader = async () => {
      while (!failed && next < plan.inPackets.length) {
        const i = next++;
        replies[i] = await this.#in(plan.inPackets[i]);
      }
    };
    const writer = async () => {
      for (const t of plan.transfers) await this.#out(t);
    };
    const readers = Array.from(
      { length: Math.min(this.#opts.inFlight ?? 32, plan.inPackets.length) },
      reader,
    );
    try {
      await Promise.all([writer(), ...readers]);
    } catch (e) {
      failed = true;
      throw e;
    }
    const stream = concat(replies);
    const out: Uint8Array[] = [];
    let o = 0;
    for (const f of plan.frames) {
      const rx = new Uint8Array(f.length);
      for (let i = 0; i < f.length; i++) rx[i] = REVERSED[stream[o + i]];
      out.push(rx);
      o += f.clocked;
    }
    this.stats.spiBytes += o;
    return out;
  }

  /** Raise CS, release every line (direction all inputs, as flashrom does), release the device. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#out(Uint8Array.of(CMD_UIO_STREAM, UIO_OUT | (this.#pins | PIN.CS0), UIO_DIR, UIO_END));
      await this.#dev.releaseInterface(0);
    } finally {
      await this.#dev.close().catch(() => {});
    }
  }

  async #out(data: Uint8Array<ArrayBuffer>): Promise<void> {
    let r;
    try {
      r = await this.#dev.transferOut(CH341_BULK_EP, data);
    } catch (e) {
      throw usbError("bulk OUT", e);
    }
    this.stats.outTransfers++;
    this.stats.bytesOut += data.length;
    if (r.status && r.status !== "ok" || r.bytesWritten !== data.length) {
      throw new FlashError(
        "USB",
        `CH341A accepted ${r.bytesWritten} of ${data.length} bytes (${r.status ?? "?"})`,
        "unplug and replug the programmer; use a shorter USB cable or another port",
      );
    }
  }

  async #in(expected: number): Promise<Uint8Array> {
    let r;
    try {
      r = await this.#dev.transferIn(CH341_BULK_EP, CH341_PACKET);
    } catch (e) {
      throw usbError("bulk IN", e);
    }
    this.stats.inTransfers++;
    const n = r.data?.byteLength ?? 0;
    this.stats.bytesIn += n;
    if (!r.data || n !== expected) {
      throw new FlashError(
        "USB",
        `CH341A answered ${n} bytes where ${expected} were expected (${r.status ?? "no data"})`,
        "unplug and replug the programmer; if it repeats, another program may be using it",
      );
    }
    return new Uint8Array(r.data.buffer, r.data.byteOffset, n);
  }
}

function usbError(what: string, e: unknown): FlashError {
  if (e instanceof FlashError) return e;
  return new FlashError(
    "USB",
    `CH341A ${what} failed (${usbFailureDetail(e)})`,
    "check the cable and that the programmer is still attached",
    { cause: e },
  );
}
