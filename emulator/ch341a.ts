/**
 * A virtual CH341A (1a86:5512) implementing the same WebUSB-shaped device interface as
 * npm:usb, so the real driver in core/io/ch341a.ts runs unchanged against it. It parses each
 * 32-byte OUT packet on its own (docs/spi-ch341.md A.9): `A8` clocks bytes through the attached chip
 * with bit reversal both ways, `AB` runs UIO sub-commands on a D5..D0 latch + direction,
 * `A1`/`A0` set and read pins, `AA` is accepted. D0 is wired to the chip's CSN, D2 to CEN,
 * D3/D5/D7 to SCK/SI/SO. Time runs on a {@link VirtualClock} and follows the CH341A half of the
 * timing model (core/timing.ts, where the assumptions are documented): each OUT transfer costs
 * a USB frame, each SPI byte 8 clocks at the fixed SCK, each UIO sub-command 0.75 µs, and a
 * packet never takes less than its USB bus time.
 *
 * @example
 * ```ts
 * import { Ch341aSpi } from "../core/io/ch341a.ts";
 * const v = createVirtualCh341a({ entry: { succeedOnAttempt: 3 } });
 * const spi = await Ch341aSpi.open(v.device, { clock: v.clock });
 * ```
 *
 * @module
 */

import { VirtualClock } from "../core/clock.ts";
import {
  CMD_GET_INPUT,
  CMD_SET_OUTPUT,
  CMD_SPI_STREAM,
  CMD_UIO_STREAM,
  PIN,
  UIO_DELAY,
  UIO_DIR,
  UIO_END,
  UIO_OUT,
} from "../core/io/ch341a_protocol.ts";
import {
  CH341_SPI_PRODUCT_ID,
  CH341_VENDOR_ID,
  type UsbDeviceLike,
  type UsbInResult,
  type UsbOutResult,
} from "../core/io/usb.ts";
import { CH341A_TIMING, type Ch341aTimingModel } from "../core/timing.ts";
import { NorFlash } from "./nor.ts";
import { type SpiEntryModel, SpiModeChip } from "./spi_mode.ts";

/** What hangs off the CH341A's SPI pins. */
export interface SpiPinsDevice {
  /** Chip select went low. */
  select(now: number): void;
  /** Clock one byte both ways; returns MISO. */
  exchange(mosi: number, now: number): number;
  /** Chip select went high. */
  deselect(now: number): void;
  /** CEN on D2; absent for a bare flash chip. */
  setCen?(low: boolean, now: number): void;
}

/** Time model of the virtual programmer: the CH341A half of the timing model. */
export type VirtualCh341aTiming = Ch341aTimingModel;

/** Default timing: {@link CH341A_TIMING}. */
export const DEFAULT_VIRTUAL_CH341A_TIMING: Readonly<VirtualCh341aTiming> = CH341A_TIMING;

/** USB traffic counters (what the bench reports). */
export interface VirtualUsbStats {
  /** Bulk OUT transfers received. */
  outTransfers: number;
  /** Bulk IN transfers answered. */
  inTransfers: number;
  /** Bytes received on bulk OUT. */
  outBytes: number;
  /** Bytes sent on bulk IN. */
  inBytes: number;
  /** 32-byte command packets executed. */
  packets: number;
}

const CS = PIN.CS0;
const CEN = PIN.CEN;
const REV = Uint8Array.from({ length: 256 }, (_, b) => {
  let r = 0;
  for (let i = 0; i < 8; i++) if (b & (1 << i)) r |= 0x80 >> i;
  return r;
});

/** The virtual programmer. */
export class VirtualCh341a implements UsbDeviceLike {
  /** USB vendor ID (WCH). */
  readonly vendorId: number = CH341_VENDOR_ID;
  /** USB product ID of the SPI/I2C/GPIO mode. */
  readonly productId: number = CH341_SPI_PRODUCT_ID;
  /** Product string. */
  readonly productName = "USB-EPP/I2C... CH341A (virtual)";
  /** No serial number, like most CH341A boards. */
  readonly serialNumber = null;
  /** The clock the programmer and the chip behind it run on. */
  readonly clock: VirtualClock;
  /** What USB packets, SPI bytes and UIO commands cost. */
  readonly timing: VirtualCh341aTiming;
  /** Transfer and packet counts so far. */
  readonly stats: VirtualUsbStats = { outTransfers: 0, inTransfers: 0, outBytes: 0, inBytes: 0, packets: 0 };
  /** The device on the pins. */
  readonly target: SpiPinsDevice;
  /** Set to make the next transfers fail as an unplugged device would. */
  unplugged = false;

  #opened = false;
  #claimed = false;
  #latch = 0x3f;
  #dir = 0;
  #replies: Uint8Array[] = [];
  #waiters: { resolve: (r: UsbInResult) => void; reject: (e: Error) => void; len: number }[] = [];

  /** A programmer with `target` on its SPI pins. */
  constructor(
    target: SpiPinsDevice,
    clock: VirtualClock = new VirtualClock(),
    timing: Partial<VirtualCh341aTiming> = {},
  ) {
    this.target = target;
    this.clock = clock;
    this.timing = { ...DEFAULT_VIRTUAL_CH341A_TIMING, ...timing };
  }

  /** Whether the device is open. */
  get opened(): boolean {
    return this.#opened;
  }

  /** D5..D0 as the pins see them: outputs drive the latch, inputs float high. */
  get pinLevels(): number {
    return ((this.#latch & this.#dir) | (~this.#dir & 0x3f)) & 0x3f;
  }

  /** Open the device. */
  open(): Promise<void> {
    if (this.unplugged) return Promise.reject(new Error("device disconnected"));
    this.#opened = true;
    return Promise.resolve();
  }

  /** Close the device. */
  close(): Promise<void> {
    this.#opened = false;
    this.#claimed = false;
    for (const w of this.#waiters.splice(0)) w.reject(new Error("device closed"));
    return Promise.resolve();
  }

  /** Select configuration 1 (the only one). */
  selectConfiguration(value: number): Promise<void> {
    this.#check(false);
    return value === 1 ? Promise.resolve() : Promise.reject(new Error(`no configuration ${value}`));
  }

  /** Claim interface 0 (the only one). */
  claimInterface(n: number): Promise<void> {
    this.#check(false);
    if (n !== 0) return Promise.reject(new Error(`no interface ${n}`));
    this.#claimed = true;
    return Promise.resolve();
  }

  /** Release the interface. */
  releaseInterface(_n: number): Promise<void> {
    this.#claimed = false;
    return Promise.resolve();
  }

  detachKernelDriver(_n: number): Promise<void> {
    return Promise.reject(new Error("no kernel driver attached"));
  }

  /** Execute the 32-byte packets of a bulk OUT transfer. */
  transferOut(ep: number, data: Uint8Array<ArrayBuffer>): Promise<UsbOutResult> {
    try {
      this.#check(true);
    } catch (e) {
      return Promise.reject(e);
    }
    if (ep !== 2) return Promise.resolve({ bytesWritten: 0, status: "stall" });
    this.stats.outTransfers++;
    this.stats.outBytes += data.length;
    this.#advance(this.timing.usbFrameMs);
    for (let o = 0; o < data.length; o += 32) {
      const start = this.clock.now();
      const replies = this.#replies.length;
      this.#packet(data.subarray(o, Math.min(o + 32, data.length)));
      // the packet's OUT transaction (and its IN reply) overlap with the previous packet's work
      const bus = this.timing.usbPacketMs * (this.#replies.length > replies ? 2 : 1);
      this.clock.advanceTo(start + bus);
    }
    this.#deliver();
    return Promise.resolve({ bytesWritten: data.length, status: "ok" });
  }

  /** Answer a bulk IN transfer with the next queued reply packet. */
  transferIn(ep: number, length: number): Promise<UsbInResult> {
    try {
      this.#check(true);
    } catch (e) {
      return Promise.reject(e);
    }
    if (ep !== 2) return Promise.resolve({ status: "stall" });
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject, len: length });
      this.#deliver();
    });
  }

  #check(needClaim: boolean): void {
    if (this.unplugged) throw new Error("LIBUSB_ERROR_NO_DEVICE: device disconnected");
    if (!this.#opened) throw new Error("InvalidStateError: device not open");
    if (needClaim && !this.#claimed) throw new Error("InvalidStateError: interface 0 not claimed");
  }

  #deliver(): void {
    while (this.#waiters.length > 0 && this.#replies.length > 0) {
      const w = this.#waiters.shift()!;
      const pkt = this.#replies.shift()!;
      if (pkt.length > w.len) {
        w.resolve({ status: "babble" });
        continue;
      }
      this.stats.inTransfers++;
      this.stats.inBytes += pkt.length;
      w.resolve({ status: "ok", data: new DataView(pkt.buffer, pkt.byteOffset, pkt.length) });
    }
  }

  #advance(ms: number): void {
    this.clock.advanceTo(this.clock.now() + ms);
  }

  #packet(p: Uint8Array): void {
    this.stats.packets++;
    switch (p[0]) {
      case CMD_SPI_STREAM:
        return this.#spi(p.subarray(1));
      case CMD_UIO_STREAM:
        return this.#uio(p.subarray(1));
      case CMD_SET_OUTPUT:
        return this.#setOutput(p);
      case CMD_GET_INPUT:
        this.#replies.push(Uint8Array.of(this.pinLevels | 0xc0, 0, 0, 0, 0, 0));
        return;
      default:
        return; // CMD_I2C_STREAM (stream configuration) and anything else: no reply
    }
  }

  #spi(bytes: Uint8Array): void {
    const reply = new Uint8Array(bytes.length);
    const byteMs = (8 / this.timing.sckHz) * 1000;
    for (let i = 0; i < bytes.length; i++) {
      this.#advance(byteMs);
      reply[i] = REV[this.target.exchange(REV[bytes[i]], this.clock.now()) & 0xff];
    }
    this.#replies.push(reply);
  }

  #uio(subs: Uint8Array): void {
    const sampled: number[] = [];
    for (const s of subs) {
      if (s === UIO_END) break;
      this.#advance(this.timing.uioCommandMs);
      const kind = s & 0xc0;
      if (kind === UIO_OUT) this.#drive(s & 0x3f, this.#dir);
      else if (kind === UIO_DIR) this.#drive(this.#latch, s & 0x3f);
      else if (kind === UIO_DELAY) this.#advance((s & 0x3f) / 1000);
      else if (s === 0x00) sampled.push(this.pinLevels | 0xc0);
    }
    if (sampled.length > 0) this.#replies.push(Uint8Array.from(sampled));
  }

  /** `A1 6A EN D15..8 DIR15..8 D7..0 DIR7..0 …`: only the D7..0 fields reach the pins here. */
  #setOutput(p: Uint8Array): void {
    const en = p[2] ?? 0;
    const latch = en & 0x04 ? p[5] & 0x3f : this.#latch;
    const dir = en & 0x08 ? p[6] & 0x3f : this.#dir;
    this.#drive(latch, dir);
  }

  #drive(latch: number, dir: number): void {
    const before = this.pinLevels;
    this.#latch = latch;
    this.#dir = dir;
    const after = this.pinLevels;
    const now = this.clock.now();
    if (!(before & CS) && after & CS) this.target.deselect(now);
    if ((before ^ after) & CEN) this.target.setCen?.(!(after & CEN), now);
    if (before & CS && !(after & CS)) this.target.select(now);
  }
}

/** Options of {@link createVirtualCh341a}. */
export interface VirtualCh341aSetup {
  /** The flash; default a fresh EN25QH16B-class part (or `flashId`). */
  nor?: NorFlash;
  /** JEDEC ID of a fresh flash, wire order. */
  flashId?: readonly number[];
  /** Beken SPI-mode entry model, or `false` for a bare SPI NOR on the clip. */
  entry?: Partial<SpiEntryModel> | false;
  /** Seed of the entry model's success draw. */
  seed?: number;
  /** Shared virtual clock. */
  clock?: VirtualClock;
  /** Programmer timing. */
  timing?: Partial<VirtualCh341aTiming>;
}

/** A wired-up virtual rig. */
export interface VirtualCh341aRig {
  /** The virtual programmer, to hand to the driver. */
  device: VirtualCh341a;
  /** The clock everything runs on. */
  clock: VirtualClock;
  /** The flash behind the chip, for inspection. */
  nor: NorFlash;
  /** The Beken entry model, or null for a bare flash. */
  chip: SpiModeChip | null;
}

/**
 * A virtual CH341A with a Beken chip (or a bare flash) on its pins.
 *
 * @example
 * ```ts
 * const rig = createVirtualCh341a({ flashId: [0xeb, 0x60, 0x15], entry: { succeedOnAttempt: 2 }, seed: 7 });
 * rig.nor.srWord = 0x4004;
 * ```
 */
export function createVirtualCh341a(setup: VirtualCh341aSetup = {}): VirtualCh341aRig {
  const clock = setup.clock ?? new VirtualClock();
  const nor = setup.nor ?? new NorFlash({ id: setup.flashId ?? [0x1c, 0x70, 0x15] });
  const chip = setup.entry === false
    ? null
    : new SpiModeChip(nor, { ...(setup.seed === undefined ? {} : { seed: setup.seed }), ...setup.entry });
  const device = new VirtualCh341a(chip ?? nor, clock, setup.timing);
  return { device, clock, nor, chip };
}
