/**
 * What a HIL scenario is: an id, what it needs from the bench (path, loader personality,
 * destructive or not, a virtual-only setup, power control), and a `run` that drives the same
 * flasher operations users run through a {@link Bench}. The runner decides applicability
 * from the declared needs; a scenario fails by throwing.
 *
 * @module
 */

import type { ChipProfile } from "../core/chips/profiles.ts";
import { FlashError } from "../core/errors.ts";
import { hex } from "../core/hex.ts";
import type { Bench, Connection, ConnectOptions, PathKind, VirtualSetup } from "./bench.ts";

/** What a scenario requires before it can run. */
export interface ScenarioNeeds {
  /** The path it runs on; "any" runs on whichever path the bench offers. */
  path: PathKind | "any";
  /** The chip's boot loader must be the BootROM ("FULL") one (UART only). */
  full?: boolean;
  /** It erases or writes flash (on real hardware only with --destructive; restored afterwards). */
  destructive: boolean;
  /**
   * The state an emulated chip starts in for this scenario (pre-protected flash, erased
   * bootloader, an adapter with a low baud ceiling). Real hardware runs it as it is, unless
   * `virtualOnly`.
   */
  virtualSetup?: (profile: ChipProfile, path: PathKind) => VirtualSetup;
  /** Only the emulator can be put in the needed state: skipped on real hardware. */
  virtualOnly?: boolean;
  /** It cuts the chip's power (DTR/RTS, CH341A D2, a relay command, or the emulator). */
  power?: boolean;
  /** Further conditions on the chip mode: a reason to skip, or null. */
  chip?: (profile: ChipProfile, path: PathKind) => string | null;
}

/** What a scenario gets to work with. */
export interface ScenarioContext {
  /** The chip mode under test (`--chip`). */
  profile: ChipProfile;
  /** The path this run uses. */
  path: PathKind;
  bench: Bench;
  /** Connect over `path` (or `opts.path`) and identify the chip, as the CLI does. */
  connect(opts?: ConnectOptions): Promise<Connection>;
  /** A line for the report (what was seen: rates, counts, warnings). */
  note(line: string): void;
}

/** A HIL scenario. */
export interface Scenario {
  /** Short id used by `--only` and in reports ("write-verify"). */
  id: string;
  /** One line saying what it proves. */
  title: string;
  needs: ScenarioNeeds;
  run(ctx: ScenarioContext): Promise<void>;
}

/** A failed expectation inside a scenario. */
export class ScenarioFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScenarioFailure";
  }
}

/** Fail the scenario with `message` unless `condition` holds. */
export function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ScenarioFailure(message);
}

/**
 * Run `fn` and return the {@link FlashError} it throws; fail the scenario when it succeeds
 * or throws anything else. `code` matches the error's code or, for a wrapped failure, the
 * code of its cause.
 */
export async function expectFlashError(
  code: FlashError["code"],
  what: string,
  fn: () => Promise<unknown>,
): Promise<FlashError> {
  try {
    await fn();
  } catch (e) {
    for (let c: unknown = e; c; c = (c as { cause?: unknown }).cause) {
      if (c instanceof FlashError && c.code === code) return c;
    }
    throw new ScenarioFailure(
      `${what}: expected a ${code} error, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
    );
  }
  throw new ScenarioFailure(`${what}: expected a ${code} error, but it succeeded`);
}

export { hex };
