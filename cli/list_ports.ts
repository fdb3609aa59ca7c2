/**
 * `list-ports`: the serial ports this machine offers (USB adapters first).
 *
 * @module
 */

import { describePort, listPorts } from "../core/io/ports.ts";
import type { Output } from "./output.ts";

/** Print the ports. */
export async function listPortsCommand(out: Output): Promise<void> {
  const ports = await listPorts();
  out.result(
    { ports },
    ports.length
      ? ports.map(describePort)
      : ["No serial ports found. Without hardware, try the emulator: --port virtual:bk7231n"],
  );
}
