/**
 * fast-check arbitraries of fuzz scenarios. Every choice shrinks towards the plainest case: a
 * small flash, the UART path, a write, no protection, and fewer fault kinds at lower rates.
 *
 * @module
 */

import fc from "fast-check";
import { CHIPS } from "../../core/chips/profiles.ts";
import type { ChipFaultKind, FaultKind, LinkFaultKind, UsbFaultKind } from "../../emulator/faults.ts";
import { CHIP_FAULT_KINDS, LINK_FAULT_KINDS, USB_FAULT_KINDS } from "../../emulator/faults.ts";
import { NOISY_TX, type Scenario, type SectorFill } from "./scenario.ts";

/** Rates a kind is drawn from, lowest first (shrinking moves towards the first). */
const LEVELS: Record<FaultKind, readonly number[]> = {
  "rx-drop": [0.002, 0.01, 0.05],
  "rx-flip": [0.002, 0.01, 0.05],
  "rx-duplicate": [0.002, 0.01, 0.05],
  "rx-garbage": [0.01, 0.05],
  "rx-stale": [0.01, 0.05],
  fragment: [0.1, 0.5, 0.9],
  delay: [0.02, 0.1],
  stall: [0.001, 0.005],
  "tx-drop": [0.001, 0.005],
  "tx-flip": [0.001, 0.005],
  "tx-garbage": [0.001, 0.005],
  "tx-retarget": [0.01, 0.03, 0.06],
  "baud-glitch": [0.3, 1],
  "baud-ignored": [0.3, 1],
  disconnect: [0.0002, 0.001],
  "power-loss-erase": [0.02, 0.1, 0.3],
  "power-loss-program": [0.001, 0.01],
  "crc-slow": [0.01, 0.1],
  reprotect: [0.002, 0.01],
  "crc-erased": [0.05, 0.3, 1],
  "usb-short": [0.0005, 0.002],
  "usb-fail": [0.0005, 0.002],
  "usb-stall": [0.0005, 0.002],
  "usb-flip": [0.001, 0.01],
  "spi-entry-refused": [0.3, 0.7],
};

/** Faults a UART job can meet: every link fault and every chip fault but SPI-mode refusal. */
const UART_KINDS: readonly (LinkFaultKind | ChipFaultKind)[] = [
  ...LINK_FAULT_KINDS,
  ...CHIP_FAULT_KINDS.filter((k) => k !== "spi-entry-refused"),
];

/** Faults an SPI job can meet: the programmer's USB faults and SPI-mode refusal. */
const SPI_KINDS: readonly (UsbFaultKind | ChipFaultKind)[] = [...USB_FAULT_KINDS, "spi-entry-refused"];

function ratesArb(
  kinds: readonly FaultKind[],
  required: readonly FaultKind[] = [],
  levels: Partial<Record<FaultKind, readonly number[]>> = {},
): fc.Arbitrary<Partial<Record<FaultKind, number>>> {
  const model: Record<string, fc.Arbitrary<number>> = {};
  for (const k of kinds) model[k] = fc.constantFrom(...(levels[k] ?? LEVELS[k]));
  return fc.record(model, { requiredKeys: [...required] }) as fc.Arbitrary<
    Partial<Record<FaultKind, number>>
  >;
}

/**
 * A TX line that now and then loses a byte, and only timing faults besides: each loss truncates
 * a request, which a loader may keep waiting to complete (the T/U loader never gives up on a
 * partial frame). Alone, one loss must cost a retry and nothing else; with every kind at once
 * the job mostly fails of something else first.
 */
const DROPPING_TX: readonly FaultKind[] = ["tx-drop", "fragment", "delay"];
/** Loss rates per write at which a job of a few hundred requests loses a byte or two. */
const DROPPING_LEVELS: Partial<Record<FaultKind, readonly number[]>> = { "tx-drop": [0.005, 0.01] };

function uartRatesArb(): fc.Arbitrary<Partial<Record<FaultKind, number>>> {
  return fc.oneof(
    { weight: 1, arbitrary: ratesArb(UART_KINDS) },
    // twice as often: the runs that reach the end of a job with a corrupted request behind them
    { weight: 2, arbitrary: ratesArb(NOISY_TX, ["tx-retarget"]) },
  );
}

/**
 * A TX line that corrupts many requests (a tenth to a third of them), for UART jobs that change
 * flash. At the usual rates a write meets one corrupted request or two, and the rest-of-chip
 * comparison at its end finds what they changed whether or not a reply said so; with many, the
 * job is cut short by one of them after another changed flash, and the reply it heard for that
 * one (flash-changing replies echo their address) is then the only word of the change its error
 * must name. Reads and verifies are left out: a read request turned into an erase whose reply
 * is lost makes a read without the erased-region map (`--no-sparse`) return what the flash now
 * holds, which no host can tell (the protocol has no checksum on requests), and the read
 * invariant does not yet set such bytes apart; at these rates that would be most of the findings.
 */
const BAD_TX_LEVELS: Partial<Record<FaultKind, readonly number[]>> = { "tx-retarget": [0.1, 0.2, 0.3] };

/**
 * Two in five UART runs drawn with every fault kind at once get one of the lines above instead:
 * one that drops a byte or two ({@link DROPPING_TX}), or (writes and erases) one that corrupts
 * many requests ({@link BAD_TX_LEVELS}). Runs drawn with the noisy TX line keep it: they are the
 * ones whose jobs meet a corrupted request or two and still reach their final comparisons.
 */
function withLineVariants(s: Scenario): fc.Arbitrary<Scenario> {
  const noisy = Object.keys(s.plan.rates).every((k) => NOISY_TX.includes(k as FaultKind));
  if (s.path !== "uart") return fc.constant(s);
  if (noisy) {
    // half the noisy lines corrupt requests at the highest rate and lose every reply to one:
    // what it changed, only the job's own comparisons (the range with the image, the rest of the
    // chip with the backup) find
    // A read's requests become erases only one time in sixteen they are picked, so a read's line
    // picks every one; and the read is one without the erased-region map (the rig reads every
    // byte when the plan's seed is 3 modulo 4): its only guard is each window's CRC from before
    // its read, where the map's own CRC guards a sparse read
    const read = s.op === "read";
    const unheard = {
      ...s.plan,
      seed: read ? s.plan.seed - (s.plan.seed % 4) + 3 : s.plan.seed,
      rates: { ...s.plan.rates, "tx-retarget": read ? 1 : 0.06 },
      retargetUnheard: 1,
    };
    return fc.oneof(
      { weight: 1, arbitrary: fc.constant(s) },
      { weight: 1, arbitrary: fc.constant({ ...s, plan: unheard }) },
    );
  }
  const withRates = (rates: Partial<Record<FaultKind, number>>): Scenario => ({
    ...s,
    plan: { ...s.plan, rates },
  });
  const changes = s.op === "write" || s.op === "erase";
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant(s) },
    {
      weight: changes ? 2 : 3,
      arbitrary: ratesArb(DROPPING_TX, ["tx-drop"], DROPPING_LEVELS).map(withRates),
    },
    ...(changes
      ? [{ weight: 1, arbitrary: ratesArb(NOISY_TX, ["tx-retarget"], BAD_TX_LEVELS).map(withRates) }]
      : []),
  );
}

/**
 * A flaky USB cable on the SPI path that corrupts bits of what the programmer reads, and
 * nothing fatal besides. A failed, stalled or short USB transfer ends the job with a typed USB
 * error, and with those drawn too nearly every SPI job dies of one during its whole-flash
 * backup read: corrupted read data, which the backup's second read (SPI has no chip CRC)
 * exists to catch, would then never reach a backup that is kept.
 */
const FLAKY_USB: readonly FaultKind[] = ["usb-flip", "spi-entry-refused"];

function spiRatesArb(): fc.Arbitrary<Partial<Record<FaultKind, number>>> {
  return fc.oneof(
    { weight: 2, arbitrary: ratesArb(SPI_KINDS) },
    { weight: 1, arbitrary: ratesArb(FLAKY_USB, ["usb-flip"]) },
  );
}

const FILLS: readonly SectorFill[] = ["random", "same", "blank", "zero", "near"];

/** Status words worth starting from: none, what Beken firmware leaves, CMP, SRP locks (with and without protection), anything. */
const protectArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(0) },
  {
    weight: 3,
    // SRP0 with protection (0x009c, 0x4084): writable only while WP# is high
    arbitrary: fc.constantFrom(0x4004, 0x001c, 0x0004, 0x4000, 0x0024, 0x0100, 0x0080, 0x009c, 0x4084),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
);

/**
 * A scenario on `path` ("uart", "spi" or either).
 *
 * @example
 * ```ts
 * fc.sample(scenarioArb("uart"), 1)[0].path; // "uart"
 * ```
 */
export function scenarioArb(path: "uart" | "spi" | "any" = "any"): fc.Arbitrary<Scenario> {
  const pathArb: fc.Arbitrary<"uart" | "spi"> = path === "any"
    ? fc.oneof({ weight: 3, arbitrary: fc.constant("uart" as const) }, {
      weight: 1,
      arbitrary: fc.constant("spi" as const),
    })
    : fc.constant(path);
  return pathArb.chain((p) =>
    fc.record({
      chip: fc.constantFrom(...CHIPS.filter((c) => c.uart).map((c) => c.id)),
      flash: fc.oneof(
        { weight: 3, arbitrary: fc.constant("small" as const) },
        { weight: 1, arbitrary: fc.constant("default" as const) },
        { weight: 1, arbitrary: fc.constant("p25q16hbk" as const) },
      ),
      // loader quirks: a T/U ring of the sizes the sources show, or one so small that a
      // read-ahead request overflows it; read-ahead forced where the loader may drop it
      quirks: fc.record({
        ring: fc.constantFrom(0, 512, 4096, 8),
        readAhead: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, {
          weight: 1,
          arbitrary: fc.constant(true),
        }),
      }),
      path: fc.constant(p),
      // mostly rates the chip's 26 MHz UART makes; now and then one it cannot (refused up front)
      baud: fc.oneof(
        { weight: 12, arbitrary: fc.constantFrom(921600, 115200, 1_500_000, 2_000_000) },
        { weight: 1, arbitrary: fc.constantFrom(3_000_000, 2_500_000) },
      ),
      op: fc.oneof(
        { weight: 6, arbitrary: fc.constant("write" as const) },
        { weight: 2, arbitrary: fc.constant("erase" as const) },
        { weight: 2, arbitrary: fc.constant("read" as const) },
        { weight: 1, arbitrary: fc.constant("verify" as const) },
      ),
      at: fc.integer({ min: 0, max: 1000 }),
      low: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, {
        weight: 1,
        arbitrary: fc.constant(true),
      }),
      allowLow: fc.boolean(),
      sectors: fc.integer({ min: 1, max: 40 }),
      fills: fc.array(fc.constantFrom(...FILLS), { minLength: 1, maxLength: 6 }),
      contentSeed: fc.integer({ min: 0, max: 0x7fffffff }),
      backup: fc.oneof({ weight: 1, arbitrary: fc.constant(false) }, {
        weight: 2,
        arbitrary: fc.constant(true),
      }),
      protect: protectArb,
      wpLow: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, {
        weight: 1,
        arbitrary: fc.constant(true),
      }),
      faultsDuringOpen: fc.oneof(
        { weight: 3, arbitrary: fc.constant(false) },
        { weight: 1, arbitrary: fc.constant(true) },
      ),
      recover: fc.oneof({ weight: 1, arbitrary: fc.constant(false) }, {
        weight: 4,
        arbitrary: fc.constant(true),
      }),
      wrongSibling: fc.oneof({ weight: 1, arbitrary: fc.constant(false) }, {
        weight: 1,
        arbitrary: fc.constant(true),
      }),
      // a second job on a second chip of the same model, sharing the backup store, started while
      // the first is inside its job
      concurrent: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, {
        weight: 1,
        arbitrary: fc.constant(true),
      }),
      // the backup of an interrupted job rots (a flipped byte) before its resume
      rotBackup: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, {
        weight: 1,
        arbitrary: fc.constant(true),
      }),
      // the resume of a failed job on a noisy TX line meets the same line
      noisyRecovery: fc.boolean(),
      // the user interrupts the job after its journal was saved 1..3 times (a resume follows):
      // a third of the jobs, as resumes are few otherwise (most faults strike before the first erase)
      interrupt: fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, {
        weight: 1,
        arbitrary: fc.integer({ min: 0, max: 2 }),
      }),
      plan: fc.record({
        seed: fc.integer({ min: 0, max: 0x7fffffff }),
        rates: p === "uart" ? uartRatesArb() : spiRatesArb(),
      }),
    }).chain(withLineVariants)
  );
}
