/**
 * `--faults` for virtual ports: a seeded {@link FaultPlan} (JSON text or a `.json` file) whose
 * faults the emulator injects into the link (UART) or the CH341A's USB transfers and SPI-mode
 * entry (SPI), with a summary of what was injected at the end.
 *
 * @module
 */

import { FlashError } from "../core/errors.ts";
import type { ByteLink } from "../core/io/link.ts";
import type { UsbDeviceLike } from "../core/io/usb.ts";
import type { Clock } from "../core/clock.ts";
import {
  FaultDice,
  type FaultKind,
  type FaultPlan,
  type FaultRecorder,
  FaultyLink,
  FaultyUsbDevice,
  refuseSpiEntry,
} from "../emulator/faults.ts";
import { faultPlanFromJson } from "../emulator/faults/plan_json.ts";
import type { SpiModeChip } from "../emulator/spi_mode.ts";

/**
 * Parse `--faults`: `{"seed": 1, "rates": {"rx-flip": 0.01}}`, or the path of a file holding it.
 *
 * @example
 * ```ts
 * await parseFaultPlan('{"seed":3,"rates":{"fragment":0.5}}'); // { seed: 3, rates: { fragment: 0.5 } }
 * ```
 */
export async function parseFaultPlan(text: string): Promise<FaultPlan> {
  let json = text.trim();
  if (!json.startsWith("{")) {
    try {
      json = await Deno.readTextFile(text);
    } catch (e) {
      throw new FlashError(
        "USAGE",
        `--faults: cannot read ${text}: ${(e as Error).message}`,
        `pass a JSON fault plan such as '{"seed":1,"rates":{"rx-flip":0.01}}', or the path of a file holding one`,
      );
    }
  }
  return faultPlanFromJson(json);
}

export { checkFaultKinds, PORT_FAULT_KINDS } from "../emulator/faults/plan_json.ts";

/** One line saying what was injected. */
export function faultSummary(recorder: FaultRecorder): string {
  const counts = Object.entries(recorder.counts()) as [FaultKind, number][];
  return counts.length === 0
    ? "faults injected: none"
    : `faults injected: ${counts.map(([k, n]) => `${k} ${n}`).join(", ")}`;
}

/** Wrap a virtual UART link in the plan's link faults. */
export function faultyLink(link: ByteLink, plan: FaultPlan, recorder: FaultRecorder): ByteLink {
  return new FaultyLink(link, plan, { recorder });
}

/** Wrap a virtual CH341A in the plan's USB faults and make its chip refuse entry as planned. */
export function faultyProgrammer(
  device: UsbDeviceLike,
  chip: SpiModeChip | null,
  clock: Clock,
  plan: FaultPlan,
  recorder: FaultRecorder,
): UsbDeviceLike {
  if (chip) refuseSpiEntry(chip, new FaultDice(plan, recorder, 301), clock);
  return new FaultyUsbDevice(device, plan, { recorder, clock });
}
