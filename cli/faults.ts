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
  CHIP_FAULT_KINDS,
  FaultDice,
  type FaultKind,
  type FaultPlan,
  type FaultRecorder,
  FaultyLink,
  FaultyUsbDevice,
  LINK_FAULT_KINDS,
  refuseSpiEntry,
  USB_FAULT_KINDS,
} from "../emulator/faults.ts";
import type { SpiModeChip } from "../emulator/spi_mode.ts";

const KINDS = new Set<string>([...LINK_FAULT_KINDS, ...USB_FAULT_KINDS, ...CHIP_FAULT_KINDS]);

/**
 * Parse `--faults`: `{"seed": 1, "rates": {"rx-flip": 0.01}}`, or the path of a file holding it.
 *
 * @example
 * ```ts
 * await parseFaultPlan('{"seed":3,"rates":{"fragment":0.5}}'); // { seed: 3, rates: { fragment: 0.5 } }
 * ```
 */
export async function parseFaultPlan(text: string): Promise<FaultPlan> {
  const bad = (why: string) =>
    new FlashError(
      "USAGE",
      `--faults: ${why}`,
      `pass a JSON fault plan such as '{"seed":1,"rates":{"rx-flip":0.01}}' (kinds: ${
        [...KINDS].join(", ")
      })`,
    );
  let json = text.trim();
  if (!json.startsWith("{")) {
    try {
      json = await Deno.readTextFile(text);
    } catch (e) {
      throw bad(`cannot read ${text}: ${(e as Error).message}`);
    }
  }
  let o: unknown;
  try {
    o = JSON.parse(json);
  } catch (e) {
    throw bad((e as Error).message);
  }
  const plan = o as Partial<FaultPlan>;
  if (typeof plan !== "object" || plan === null || typeof plan.rates !== "object" || plan.rates === null) {
    throw bad('missing "rates"');
  }
  for (const [k, v] of Object.entries(plan.rates)) {
    if (!KINDS.has(k)) throw bad(`unknown fault kind "${k}"`);
    if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw bad(`rate of ${k} must be a number in 0..1`);
  }
  for (const k of Object.keys(plan.skip ?? {})) {
    if (!KINDS.has(k)) throw bad(`unknown fault kind "${k}" in "skip"`);
  }
  return { ...plan, seed: Number.isSafeInteger(plan.seed) ? plan.seed! : 1, rates: plan.rates } as FaultPlan;
}

/**
 * Fault kinds each kind of virtual port can inject: link faults on `virtual:` (the emulated
 * UART), USB faults and refused SPI-mode entry on `ch341a:virtual:`. Chip faults (power loss,
 * slow CRC, re-protection) exist only in `createFaultyChip`, which the CLI does not build.
 */
export const PORT_FAULT_KINDS: Readonly<Record<"virtual" | "ch341a-virtual", readonly FaultKind[]>> = {
  virtual: LINK_FAULT_KINDS,
  "ch341a-virtual": [...USB_FAULT_KINDS, "spi-entry-refused"],
};

/**
 * Refuse a plan naming a kind the port cannot inject (it would be silently ignored). Ports
 * that take no faults at all are left to the session, which refuses `--faults` on them.
 */
export function checkFaultKinds(plan: FaultPlan, port: { kind: string }): FaultPlan {
  if (port.kind !== "virtual" && port.kind !== "ch341a-virtual") return plan;
  const applies = PORT_FAULT_KINDS[port.kind];
  const named = [...Object.keys(plan.rates), ...Object.keys(plan.skip ?? {})];
  const stray = [...new Set(named.filter((k) => !(applies as readonly string[]).includes(k)))];
  if (stray.length > 0) {
    const where = port.kind === "virtual" ? "virtual: (UART link)" : "ch341a:virtual: (USB and SPI entry)";
    throw new FlashError(
      "USAGE",
      `--faults: ${stray.join(", ")} cannot be injected on a ${where} port`,
      `use only ${applies.join(", ")} there`,
    );
  }
  return plan;
}

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
