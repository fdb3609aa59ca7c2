/**
 * A USB device that stands in front of another and passes everything through: the base of the
 * decorators (recording, fault injection), which override only what they change.
 *
 * @example
 * ```ts
 * import type { UsbOutResult } from "./usb.ts";
 * // Count OUT transfers, change nothing.
 * class CountingUsbDevice extends ForwardingUsbDevice {
 *   outs = 0;
 *   override transferOut(ep: number, data: Uint8Array<ArrayBuffer>): Promise<UsbOutResult> {
 *     this.outs++;
 *     return super.transferOut(ep, data);
 *   }
 * }
 * ```
 *
 * @module
 */

import type { UsbDeviceLike, UsbInResult, UsbOutResult } from "./usb.ts";

/** Forwards every {@link UsbDeviceLike} member to {@link ForwardingUsbDevice.inner}. */
export class ForwardingUsbDevice implements UsbDeviceLike {
  /** The device everything is passed to. */
  readonly inner: UsbDeviceLike;

  /** A device passing everything to `inner`. */
  constructor(inner: UsbDeviceLike) {
    this.inner = inner;
  }

  /** USB vendor ID of the inner device. */
  get vendorId(): number {
    return this.inner.vendorId;
  }
  /** USB product ID of the inner device. */
  get productId(): number {
    return this.inner.productId;
  }
  /** Product string of the inner device. */
  get productName(): string | null | undefined {
    return this.inner.productName;
  }
  /** Serial number of the inner device. */
  get serialNumber(): string | null | undefined {
    return this.inner.serialNumber;
  }
  /** Whether the inner device is open. */
  get opened(): boolean | undefined {
    return this.inner.opened;
  }

  /** Open the inner device. */
  open(): Promise<void> {
    return this.inner.open();
  }
  /** Close the inner device. */
  close(): Promise<void> {
    return this.inner.close();
  }
  /** Select a configuration of the inner device. */
  selectConfiguration(configurationValue: number): Promise<void> {
    return this.inner.selectConfiguration(configurationValue);
  }
  /** Claim an interface of the inner device. */
  claimInterface(interfaceNumber: number): Promise<void> {
    return this.inner.claimInterface(interfaceNumber);
  }
  /** Release an interface of the inner device. */
  releaseInterface(interfaceNumber: number): Promise<void> {
    return this.inner.releaseInterface(interfaceNumber);
  }
  /** Bulk OUT transfer through the inner device. */
  transferOut(endpointNumber: number, data: Uint8Array<ArrayBuffer>): Promise<UsbOutResult> {
    return this.inner.transferOut(endpointNumber, data);
  }
  /** Bulk IN transfer through the inner device. */
  transferIn(endpointNumber: number, length: number): Promise<UsbInResult> {
    return this.inner.transferIn(endpointNumber, length);
  }
}
