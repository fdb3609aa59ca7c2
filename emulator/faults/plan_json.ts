/**
 * A {@link FaultPlan} from its JSON text, and which kinds each kind of virtual port can inject:
 * the pure half of the CLI's `--faults` and of the browser page's fault plan.
 *
 * @module
 */

import { FlashError } from "../../core/errors.ts";
import {
  CHIP_FAULT_KINDS,
  type FaultKind,
  type FaultPlan,
  LINK_FAULT_KINDS,
  USB_FAULT_KINDS,
} from "./plan.ts";

const KINDS = new Set<string>([...LINK_FAULT_KINDS, ...USB_FAULT_KINDS, ...CHIP_FAULT_KINDS]);

/**
 * Fault kinds each kind of virtual port can inject: link faults on `virtual:` (the emulated
 * UART), USB faults and refused SPI-mode entry on `ch341a:virtual:`. Chip faults (power loss,
 * slow CRC, re-protection) exist only in `createFaultyChip`, which no port builds.
 */
export const PORT_FAULT_KINDS: Readonly<Record<"virtual" | "ch341a-virtual", readonly FaultKind[]>> = {
  virtual: LINK_FAULT_KINDS,
  "ch341a-virtual": [...USB_FAULT_KINDS, "spi-entry-refused"],
};

/**
 * Parse and check a plan's JSON (`label` names it in messages, e.g. "--faults").
 *
 * @example
 * ```ts
 * faultPlanFromJson('{"seed":3,"rates":{"fragment":0.5}}'); // { seed: 3, rates: { fragment: 0.5 } }
 * ```
 */
export function faultPlanFromJson(json: string, label = "--faults"): FaultPlan {
  const bad = (why: string) =>
    new FlashError(
      "USAGE",
      `${label}: ${why}`,
      `pass a JSON fault plan such as '{"seed":1,"rates":{"rx-flip":0.01}}' (kinds: ${
        [...KINDS].join(", ")
      })`,
    );
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
 * Refuse a plan naming a kind the port cannot inject (it would be silently ignored). Ports
 * that take no faults at all are left to the session, which refuses `--faults` on them.
 */
export function checkFaultKinds(plan: FaultPlan, port: { kind: string }, label = "--faults"): FaultPlan {
  if (port.kind !== "virtual" && port.kind !== "ch341a-virtual") return plan;
  const applies = PORT_FAULT_KINDS[port.kind];
  const named = [...Object.keys(plan.rates), ...Object.keys(plan.skip ?? {})];
  const stray = [...new Set(named.filter((k) => !(applies as readonly string[]).includes(k)))];
  if (stray.length > 0) {
    const where = port.kind === "virtual" ? "virtual: (UART link)" : "ch341a:virtual: (USB and SPI entry)";
    throw new FlashError(
      "USAGE",
      `${label}: ${stray.join(", ")} cannot be injected on a ${where} port`,
      `use only ${applies.join(", ")} there`,
    );
  }
  return plan;
}
