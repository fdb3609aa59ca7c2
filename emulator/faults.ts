/**
 * Seeded, reproducible fault injection for the whole stack, in the spirit of flashrom's
 * `fault` programmer: a {@link FaultyLink} for any ByteLink, chip-level faults (power loss in
 * the middle of an erase or page program, a slow CRC engine, re-protection) on a
 * {@link createFaultyChip} virtual chip, and a {@link FaultyUsbDevice} for the CH341A path.
 * Every decorator records what it injected in a {@link FaultRecorder}.
 *
 * @example
 * ```ts
 * import { createFaultyChip } from "./faults.ts";
 * import { openUartTarget } from "../mod.ts";
 *
 * const v = createFaultyChip({ chip: "bk7231n", plan: { seed: 42, rates: { "rx-flip": 0.02, fragment: 0.3 } } });
 * const { target } = await openUartTarget(v.link(), { baud: 921600 });
 * // … run a job, then:
 * console.log(v.recorder.counts());
 * ```
 *
 * @module
 */

export * from "./faults/plan.ts";
export * from "./faults/link.ts";
export * from "./faults/chip.ts";
export * from "./faults/usb.ts";
