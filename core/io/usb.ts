/**
 * The narrow WebUSB-shaped device interface the CH341A driver needs. npm:usb@3's `UsbDevice`
 * satisfies it (docs/deno-runtime.md "USB"), so does a browser's `USBDevice` minus
 * `detachKernelDriver`, and so does the emulator's virtual CH341A.
 *
 * @module
 */

import { FlashError } from "../errors.ts";

/** Result of an IN transfer (WebUSB `USBInTransferResult`). */
export interface UsbInResult {
  /** The bytes received. */
  data?: DataView;
  /** How the transfer ended. */
  status?: "ok" | "stall" | "babble";
}

/** Result of an OUT transfer (WebUSB `USBOutTransferResult`). */
export interface UsbOutResult {
  /** Bytes the device accepted. */
  bytesWritten: number;
  /** How the transfer ended. */
  status?: "ok" | "stall" | "babble";
}

/** The device operations the driver uses. Endpoints are numbers without the direction bit. */
export interface UsbDeviceLike {
  /** USB vendor ID. */
  readonly vendorId: number;
  /** USB product ID. */
  readonly productId: number;
  /** Product string, where the device has one. */
  readonly productName?: string | null;
  /** Serial number string, where the device has one. */
  readonly serialNumber?: string | null;
  /** Whether the device is open. */
  readonly opened?: boolean;
  /** Open the device. */
  open(): Promise<void>;
  /** Close the device. */
  close(): Promise<void>;
  /** Select a configuration by its value. */
  selectConfiguration(configurationValue: number): Promise<void>;
  /** Claim an interface for this process. */
  claimInterface(interfaceNumber: number): Promise<void>;
  /** Release a claimed interface. */
  releaseInterface(interfaceNumber: number): Promise<void>;
  /** Linux only (npm:usb); absent in browsers. */
  detachKernelDriver?(interfaceNumber: number): Promise<void>;
  /** Bulk OUT transfer on an endpoint number. */
  transferOut(endpointNumber: number, data: Uint8Array<ArrayBuffer>): Promise<UsbOutResult>;
  /** Bulk IN transfer of up to `length` bytes on an endpoint number. */
  transferIn(endpointNumber: number, length: number): Promise<UsbInResult>;
}

/** USB vendor ID of WCH. */
export const CH341_VENDOR_ID = 0x1a86;
/** Product ID of a CH341A strapped for I2C/SPI/GPIO ("EPP/MEM/I2C" mode). */
export const CH341_SPI_PRODUCT_ID = 0x5512;

const NOT_FOUND_REMEDY =
  "check the jumper is in the I2C/SPI position, the udev rule (Linux) or WinUSB driver via Zadig (Windows), and the cable";

/** The shape of npm:usb's module this file relies on. */
export interface UsbModule {
  /** npm:usb's WebUSB object. */
  webusb?: { getDevices(): Promise<unknown[]> };
  /** The same under its other export name. */
  usb?: { getDevices(): Promise<unknown[]> };
}

/** Loads npm:usb; replaceable in tests. */
export type UsbLoader = () => Promise<UsbModule>;

const USB_SPECIFIER = "npm:usb@3";

/** Import npm:usb lazily so that nothing USB is loaded unless a CH341A is asked for. */
export const loadNpmUsb: UsbLoader = () => import(USB_SPECIFIER) as Promise<UsbModule>;

/**
 * The `index`-th CH341A (1a86:5512) on the USB bus, not yet opened. Every failure, be it a
 * machine without a USB bus, a missing native binding, missing permission or simply no
 * device, becomes one {@link FlashError} ("USB") with the same remedy.
 *
 * @example
 * ```ts
 * const dev = await findCh341a(0); // throws FlashError("USB") when none is attached
 * ```
 */
export async function findCh341a(index = 0, load: UsbLoader = loadNpmUsb): Promise<UsbDeviceLike> {
  const fail = (detail: string, cause?: unknown) =>
    new FlashError(
      "USB",
      `no CH341A (1a86:5512)${index > 0 ? ` #${index}` : ""} found${detail ? ` (${detail})` : ""}`,
      NOT_FOUND_REMEDY,
      cause === undefined ? undefined : { cause },
    );
  let devices: UsbDeviceLike[];
  try {
    const mod = await load();
    const bus = mod.usb ?? mod.webusb;
    if (!bus) throw new Error("npm:usb exports no device list");
    devices = (await bus.getDevices()) as UsbDeviceLike[];
  } catch (e) {
    throw fail(usbFailureDetail(e), e);
  }
  const matches = devices.filter((d) =>
    d.vendorId === CH341_VENDOR_ID && d.productId === CH341_SPI_PRODUCT_ID
  );
  const dev = matches[index];
  if (!dev) {
    throw fail(matches.length > 0 ? `only ${matches.length} attached` : "");
  }
  return dev;
}

/** A short reason for a USB stack failure. */
export function usbFailureDetail(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  if (/sys\/bus\/usb|no such file|not found/i.test(msg) && /usb/i.test(msg)) {
    return "this machine has no USB bus";
  }
  if (/native binding|--allow-ffi|requires.*ffi/i.test(msg)) {
    return "USB support did not load: run with --allow-ffi";
  }
  if (/permission|access|EACCES|denied/i.test(msg)) return "permission denied";
  return msg.split("\n")[0].slice(0, 120);
}

/**
 * Open and claim a CH341A the way every libusb/WebUSB tool does: open, configuration 1,
 * detach a kernel driver where the platform has one (Linux 5.10–5.16 bind `ch341` to 5512),
 * claim interface 0.
 */
export async function claimCh341a(dev: UsbDeviceLike): Promise<void> {
  const step = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      throw new FlashError(
        "USB",
        `CH341A: ${what} failed (${usbFailureDetail(e)})`,
        `${NOT_FOUND_REMEDY}; on Linux also make sure no other program (or the ch341 serial driver) holds it`,
        { cause: e },
      );
    }
  };
  if (!dev.opened) await step("open", () => dev.open());
  await step("select configuration 1", () => dev.selectConfiguration(1));
  if (dev.detachKernelDriver) {
    try {
      await dev.detachKernelDriver(0);
    } catch {
      // no kernel driver bound: the usual case
    }
  }
  await step("claim interface 0", () => dev.claimInterface(0));
}
