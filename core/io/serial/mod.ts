/**
 * Open a real serial port with the backend for the running operating system.
 *
 * @module
 */

import type { ByteLink } from "../link.ts";
import { openDarwinSerial } from "./darwin.ts";
import { openLinuxSerial } from "./linux.ts";
import { openWindowsSerial } from "./windows.ts";

/** Options for {@link openSerial}. */
export interface SerialOptions {
  /** Initial baud rate; the Beken loader always starts at 115200. */
  baud?: number;
}

/**
 * Open `path` (`/dev/ttyUSB0`, `/dev/cu.usbserial-1410`, `COM3`) as a raw 8N1 {@link ByteLink}.
 *
 * @throws {FlashError} code "PORT" with a remedy when the port cannot be used.
 *
 * @example
 * ```ts
 * const link = await openSerial("/dev/ttyUSB0", { baud: 115200 });
 * await link.setBaud(2_000_000);
 * await link.close();
 * ```
 */
export function openSerial(path: string, options: SerialOptions = {}): Promise<ByteLink> {
  const baud = options.baud ?? 115200;
  try {
    switch (Deno.build.os) {
      case "darwin":
        return Promise.resolve(openDarwinSerial(path, baud));
      case "windows":
        return Promise.resolve(openWindowsSerial(path, baud));
      default:
        return Promise.resolve(openLinuxSerial(path, baud));
    }
  } catch (e) {
    return Promise.reject(e);
  }
}
