/**
 * Replaying a recorded CH341A USB link: a {@link UsbDeviceLike} whose far end is the trace.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { VirtualClock } from "../clock.ts";
import { hexByte } from "../hex.ts";
import type { TraceEvent, TraceLink } from "../io/trace.ts";
import type { UsbDeviceLike, UsbInResult, UsbOutResult } from "../io/usb.ts";
import { describeCh341, describeEvent } from "./describe.ts";
import { hexDiff } from "./hex_diff.ts";
import { type ReplayOptions, TraceDivergenceError } from "./replay.ts";

/**
 * A USB device answering a CH341A driver from one recorded USB link. OUT transfers are
 * matched in order against the recorded OUTs, IN requests are answered in order from the
 * recorded INs: the interleaving of the two (INs queued ahead) may differ from the recording.
 */
export class ReplayUsbDevice implements UsbDeviceLike {
  readonly vendorId: number;
  readonly productId: number;
  readonly productName = "replay";
  readonly serialNumber = null;
  /** Clock moved to each recorded transfer's completion time. */
  readonly clock: Clock & VirtualClock;
  opened = false;
  /** OUT and IN transfers, each in the order the driver issued them. */
  readonly #outs: (TraceEvent & { kind: "usb-out" })[];
  readonly #ins: (TraceEvent & { kind: "usb-in" })[];
  readonly #controls: (TraceEvent & { kind: "usb" })[];
  readonly #label: string;
  #o = 0;
  #n = 0;
  #c = 0;
  #outBytes = 0;
  #failure: TraceDivergenceError | null = null;

  constructor(link: TraceLink, options: ReplayOptions = {}) {
    if (link.kind !== "usb") throw new TypeError(`trace link ${link.id} is a ${link.kind} link, not usb`);
    const m = /^usb:([0-9a-f]{4}):([0-9a-f]{4})$/.exec(link.name);
    this.vendorId = m ? parseInt(m[1], 16) : 0x1a86;
    this.productId = m ? parseInt(m[2], 16) : 0x5512;
    this.clock = options.virtualClock ?? new VirtualClock();
    this.#outs = link.events.filter((e) => e.kind === "usb-out");
    this.#ins = link.events.filter((e) => e.kind === "usb-in");
    this.#controls = link.events.filter((e) => e.kind === "usb");
    this.#label = `link ${link.id} "${link.name}"${link.label ? ` (${link.label})` : ""}`;
  }

  /** The divergence that failed this replay, if any. */
  get divergence(): TraceDivergenceError | null {
    return this.#failure;
  }

  open(): Promise<void> {
    this.opened = true;
    return this.#control("open");
  }
  close(): Promise<void> {
    this.opened = false;
    return this.#control("close");
  }
  selectConfiguration(_configurationValue: number): Promise<void> {
    return this.#control("configuration");
  }
  claimInterface(_interfaceNumber: number): Promise<void> {
    return this.#control("claim");
  }
  releaseInterface(_interfaceNumber: number): Promise<void> {
    return this.#control("release");
  }
  detachKernelDriver(_interfaceNumber: number): Promise<void> {
    return this.#control("detach");
  }

  transferOut(endpointNumber: number, data: Uint8Array<ArrayBuffer>): Promise<UsbOutResult> {
    try {
      this.#live();
      const e = this.#outs[this.#o];
      if (!e || e.ep !== endpointNumber) {
        this.#fail(
          `the driver sent a USB OUT (${describeCh341(data)}) where the recording has ${describeEvent(e)}`,
          e?.line ?? 0,
          this.#outBytes,
        );
      }
      const n = Math.max(data.length, e.data.length);
      for (let k = 0; k < n; k++) {
        if (data[k] !== e.data[k]) {
          this.#fail(
            `the driver sent ${
              k < data.length ? `0x${hexByte(data[k])}` : "nothing"
            } where the recording has ${
              k < e.data.length ? `0x${hexByte(e.data[k])}` : "nothing"
            } in a USB OUT`,
            e.line,
            this.#outBytes + k,
            [
              `  recorded: ${describeCh341(e.data)}`,
              `  driver:   ${describeCh341(data)}`,
              ...hexDiff(e.data, data, k, [`recorded (line ${e.line})`, "driver"]),
            ],
          );
        }
      }
      this.#outBytes += data.length;
      this.clock.advanceTo(e.t);
      this.#o++;
      return Promise.resolve({ bytesWritten: data.length, status: "ok" });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  transferIn(endpointNumber: number, length: number): Promise<UsbInResult> {
    try {
      this.#live();
      const e = this.#ins[this.#n];
      if (!e || e.ep !== endpointNumber || e.length !== length) {
        this.#fail(
          `the driver asked for a USB IN of ${length} bytes on endpoint ${endpointNumber} where the recording has ${
            describeEvent(e)
          }`,
          e?.line ?? 0,
          null,
        );
      }
      this.clock.advanceTo(e.t);
      this.#n++;
      const data = e.data.slice();
      return Promise.resolve({
        data: new DataView(data.buffer),
        status: (e.status ?? "ok") as UsbInResult["status"],
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Like {@link ReplayLink.assertConsumed}: transfers left in the recording are a divergence. */
  assertConsumed(): void {
    if (this.#failure) throw this.#failure;
    const e = this.#outs[this.#o] ?? this.#ins[this.#n];
    if (e) {
      this.#fail(`the driver stopped where the recording continues with ${describeEvent(e)}`, e.line, null);
    }
  }

  #live(): void {
    if (this.#failure) throw this.#failure;
  }

  #control(op: string): Promise<void> {
    const e = this.#controls[this.#c];
    if (e?.op === op) {
      this.clock.advanceTo(e.t);
      this.#c++;
    }
    return this.#failure ? Promise.reject(this.#failure) : Promise.resolve();
  }

  #fail(what: string, line: number, offset: number | null, detail: string[] = []): never {
    const where = [
      `at ${this.#label}`,
      offset !== null ? `OUT byte ${offset}` : null,
      line ? `trace line ${line}` : "past the end of the trace",
    ].filter(Boolean).join(", ");
    this.#failure = new TraceDivergenceError(
      [`trace replay diverged: ${what}`, `  ${where}`, ...detail].join("\n"),
      line,
      offset,
    );
    throw this.#failure;
  }
}
