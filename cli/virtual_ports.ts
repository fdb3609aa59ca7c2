/**
 * The emulator behind the CLI's virtual ports (`virtual:<chip>`, `ch341a:virtual:<chip>`): the
 * {@link EmulatorPorts} the port registry opens them through, with `--state` (loaded, written
 * through on every flash change, saved at the end), `--seed` and `--faults` (applied to the
 * link or the programmer, summarised when the session ends).
 *
 * @module
 */

import type { ChipProfile } from "../core/chips/profiles.ts";
import { FlashError } from "../core/errors.ts";
import type { ByteLink } from "../core/io/link.ts";
import type { EmulatorPorts } from "../core/io/registry.ts";
import type { UsbDeviceLike } from "../core/io/usb.ts";
import type { VirtualCh341aRig } from "../emulator/ch341a.ts";
import type { FaultRecorder } from "../emulator/faults/plan.ts";
import type { Session, SessionOptions } from "./session.ts";

/** A cleanup step of the session: runs after the job, last added first. */
export type Cleanup = () => Promise<void>;

/** Cleanups that belong to the end of the whole session, not to the step that opened the port. */
export const SESSION_END: WeakSet<Cleanup> = new WeakSet<Cleanup>();

/** The virtual chip's state file cannot be written. */
function stateFileError(path: string, e: unknown): FlashError {
  return new FlashError(
    "USAGE",
    `cannot write the virtual chip's state file ${path}: ${e instanceof Error ? e.message : e}`,
    "pass --state a path in an existing, writable directory",
    { cause: e },
  );
}

/** Apply `--faults` through cli/faults.ts and report what was injected when the session ends. */
async function withFaults<T>(
  opts: SessionOptions,
  cleanups: Cleanup[],
  wrap: (faults: typeof import("./faults.ts"), recorder: FaultRecorder) => T,
): Promise<T> {
  const faults = await import("./faults.ts");
  const { FaultRecorder } = await import("../emulator/faults/plan.ts");
  const recorder = new FaultRecorder();
  const summary = () => Promise.resolve(opts.onMessage(faults.faultSummary(recorder), "info"));
  SESSION_END.add(summary);
  cleanups.unshift(summary);
  return wrap(faults, recorder);
}

/** The emulator a session's virtual port runs on, and what the session needs from it after. */
export class CliEmulator implements EmulatorPorts {
  /** Persist the virtual chip (no-op until one is made). */
  save: Cleanup = () => Promise.resolve();
  /** The chip mode of the virtual chip, once made. */
  profile: ChipProfile | null = null;
  /** What the emulated chip does when it boots (UART ports). */
  emulatedBoot: Session["emulatedBoot"];
  readonly #opts: SessionOptions;
  readonly #cleanups: Cleanup[];
  readonly #spiEntry: boolean;
  #rig: VirtualCh341aRig | null = null;

  /**
   * For the session `opts`; the chip's save goes onto `cleanups`. `spiEntry`: the virtual
   * CH341A's chip enters SPI mode (Beken SPI mode rather than a bare flash).
   */
  constructor(opts: SessionOptions, cleanups: Cleanup[], spiEntry = true) {
    this.#opts = opts;
    this.#cleanups = cleanups;
    this.#spiEntry = spiEntry;
  }

  /** A virtual chip on a byte link, with `--faults` on the link. */
  async uart(chip: string): Promise<ByteLink> {
    const opts = this.#opts;
    const { createVirtualChip } = await import("../emulator/virtual.ts");
    const v = await createVirtualChip({ chip, state: opts.state, seed: opts.seed });
    // the state file follows every flash change, so a killed process leaves the chip as far as it got
    if (opts.state) {
      const { writeThrough } = await import("../emulator/persist.ts");
      try {
        writeThrough(v, opts.state);
      } catch (e) {
        throw stateFileError(opts.state, e);
      }
    }
    this.profile = v.profile;
    this.emulatedBoot = () => v.chip.bootCheck();
    this.save = () => v.save();
    this.#cleanups.push(this.save);
    const link = v.link();
    return opts.faults
      ? await withFaults(opts, this.#cleanups, (f, r) => f.faultyLink(link, opts.faults!, r))
      : link;
  }

  /** A virtual CH341A wired to a virtual chip (`--faults` go on with {@link withProgrammerFaults}). */
  async ch341a(chip: string): Promise<{ device: UsbDeviceLike; clock: VirtualCh341aRig["clock"] }> {
    const opts = this.#opts;
    const { createVirtualChip } = await import("../emulator/virtual.ts");
    const { createVirtualCh341a } = await import("../emulator/ch341a.ts");
    const v = await createVirtualChip({
      chip,
      state: opts.state,
      seed: opts.seed,
      chipFlag: (id) => `--port ch341a:virtual:${id}`,
    });
    this.profile = v.profile;
    this.save = () => v.save();
    this.#cleanups.push(this.save);
    const rig = createVirtualCh341a({
      nor: v.nor,
      clock: v.clock,
      // like real chips, the virtual one does not enter SPI mode on every CEN release
      entry: this.#spiEntry ? {} : false,
      seed: opts.seed,
    });
    this.#rig = rig;
    return { device: rig.device, clock: rig.clock };
  }

  /**
   * `--faults` on the virtual programmer's `device` (after the recorder, so the trace holds
   * what the driver saw); the device as it is when there are none or no virtual programmer.
   */
  async withProgrammerFaults(device: UsbDeviceLike): Promise<UsbDeviceLike> {
    const rig = this.#rig;
    const opts = this.#opts;
    if (!opts.faults || !rig) return device;
    return await withFaults(
      opts,
      this.#cleanups,
      (f, r) => f.faultyProgrammer(device, rig.chip, rig.clock, opts.faults!, r),
    );
  }
}
