/**
 * `list-ports`: the serial ports and programmers this machine offers.
 *
 * @module
 */

import { FlashError } from "../core/errors.ts";
import type { Output } from "./output.ts";

/** Print the ports. */
export function listPortsCommand(_out: Output): Promise<void> {
  return Promise.reject(
    new FlashError(
      "UNSUPPORTED",
      "port listing is not available yet",
      "name the port with --port (e.g. /dev/ttyUSB0 or COM3)",
    ),
  );
}
