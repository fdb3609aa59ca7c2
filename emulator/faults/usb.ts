/**
 * A seeded fault decorator for the CH341A's USB device: short and failed transfers, stalls,
 * and flipped bits in what comes back. Plus a way to make SPI-mode entry fail on a
 * {@link SpiModeChip}. Every fault is recorded.
 *
 * @module
 */

import type { Clock } from "../../core/clock.ts";
import type { UsbDeviceLike, UsbInResult, UsbOutResult } from "../../core/io/usb.ts";
import { ForwardingUsbDevice } from "../../core/io/usb_forward.ts";
import type { SpiModeChip } from "../spi_mode.ts";
import { FaultDice, type FaultKind, type FaultPlan, FaultRecorder } from "./plan.ts";

/** Options of a {@link FaultyUsbDevice}. */
export interface FaultyUsbOptions {
  /** Shared recorder (default: a new one). */
  recorder?: FaultRecorder;
  /** Clock for fault timestamps (default: time 0). */
  clock?: Clock;
  /** Separates this device's random stream from other injectors on the same plan (default 201). */
  salt?: number;
}

/**
 * A {@link UsbDeviceLike} that injects `usb-*` faults into bulk transfers of another one.
 *
 * @example
 * ```ts
 * import { Ch341aSpi } from "../../core/io/ch341a.ts";
 * import { createVirtualCh341a } from "../ch341a.ts";
 * const rig = createVirtualCh341a({ flashId: [0xeb, 0x60, 0x15] });
 * const dev = new FaultyUsbDevice(rig.device, { seed: 5, rates: { "usb-short": 0.01 } }, { clock: rig.clock });
 * const spi = await Ch341aSpi.open(dev, { clock: rig.clock });
 * ```
 */
export class FaultyUsbDevice extends ForwardingUsbDevice {
  /** What was injected. */
  readonly recorder: FaultRecorder;
  /** The seeded dice deciding each fault. */
  readonly dice: FaultDice;
  readonly #clock?: Clock;

  /** `inner` with faults from `plan`. */
  constructor(inner: UsbDeviceLike, plan: FaultPlan, options: FaultyUsbOptions = {}) {
    super(inner);
    this.recorder = options.recorder ?? new FaultRecorder();
    this.dice = new FaultDice(plan, this.recorder, options.salt ?? 201);
    this.#clock = options.clock;
  }

  #record(kind: FaultKind, detail: string): void {
    this.recorder.record(kind, this.#clock?.now() ?? 0, detail);
  }

  /** Bulk OUT through to the inner device, unless a fault stops or alters it. */
  override async transferOut(ep: number, data: Uint8Array<ArrayBuffer>): Promise<UsbOutResult> {
    const d = this.dice;
    if (d.roll("usb-fail")) {
      this.#record("usb-fail", `bulk OUT of ${data.length} bytes failed`);
      throw new Error("LIBUSB_ERROR_IO");
    }
    if (d.roll("usb-stall")) {
      this.#record("usb-stall", `bulk OUT of ${data.length} bytes stalled`);
      return { bytesWritten: 0, status: "stall" };
    }
    if (data.length > 1 && d.roll("usb-short")) {
      const n = 1 + d.int(data.length - 1);
      this.#record("usb-short", `bulk OUT took ${n} of ${data.length} bytes`);
      const r = await this.inner.transferOut(ep, data.slice(0, n));
      return { ...r, bytesWritten: Math.min(r.bytesWritten, n) };
    }
    return await this.inner.transferOut(ep, data);
  }

  /** Bulk IN from the inner device, possibly short, stalled or with flipped bits. */
  override async transferIn(ep: number, length: number): Promise<UsbInResult> {
    const d = this.dice;
    const r = await this.inner.transferIn(ep, length);
    if (d.roll("usb-fail")) {
      this.#record("usb-fail", `bulk IN of ${length} bytes failed (its data is lost)`);
      throw new Error("LIBUSB_ERROR_IO");
    }
    const data = r.data;
    if (!data || data.byteLength === 0) return r;
    if (d.roll("usb-stall")) {
      this.#record("usb-stall", `bulk IN stalled after the device queued ${data.byteLength} bytes`);
      return { status: "stall" };
    }
    if (data.byteLength > 1 && d.roll("usb-short")) {
      const n = 1 + d.int(data.byteLength - 1);
      this.#record("usb-short", `bulk IN returned ${n} of ${data.byteLength} bytes`);
      return { ...r, data: new DataView(data.buffer, data.byteOffset, n) };
    }
    if (d.roll("usb-flip")) {
      const bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
      const i = d.int(bytes.length);
      const bit = d.int(8);
      bytes[i] ^= 1 << bit;
      this.#record("usb-flip", `flipped bit ${bit} of IN byte ${i} of ${bytes.length}`);
      return { ...r, data: new DataView(bytes.buffer) };
    }
    return r;
  }
}

/**
 * Make a {@link SpiModeChip} refuse SPI-mode entry on each CEN release with the plan's
 * `spi-entry-refused` rate, recording every refusal. Returns a function that undoes it.
 */
export function refuseSpiEntry(chip: SpiModeChip, dice: FaultDice, clock?: Clock): () => void {
  const base = chip.model.successProbability;
  const previous = chip.onCen;
  chip.onCen = (low, now) => {
    previous?.(low, now);
    if (low) return;
    if (dice.roll("spi-entry-refused")) {
      chip.model.successProbability = 0;
      dice.recorder.record(
        "spi-entry-refused",
        clock?.now() ?? now,
        `entry attempt ${chip.attempts + 1} refused`,
      );
    } else chip.model.successProbability = base;
  };
  return () => {
    chip.onCen = previous;
    chip.model.successProbability = base;
  };
}
