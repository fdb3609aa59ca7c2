/**
 * The virtual chip without any file behind it: a {@link BekenChip} built from a chip profile
 * (or from a decoded state), its NOR flash, clock and wire. `emulator/virtual.ts` adds the
 * `--state` file on top; the browser page uses this module directly (it touches no `Deno.*`).
 *
 * @example
 * ```ts
 * import { buildVirtualChip } from "./build_chip.ts";
 *
 * const v = buildVirtualChip({ chip: "bk7231n" });
 * const link = v.link(); // a ByteLink on a virtual clock
 * ```
 *
 * @module
 */

import { chipById, type ChipProfile, CHIPS } from "../core/chips/profiles.ts";
import { flashPartFor } from "../core/spi/jedec.ts";
import { DEFAULT_TIMING, type TimingModel } from "../core/timing.ts";
import { VirtualClock } from "../core/clock.ts";
import type { LoaderFamily } from "../core/chips/loaders.ts";
import { FlashError } from "../core/errors.ts";
import { NorFlash, norTimingOf } from "./nor.ts";
import { type AppBehaviour, BekenChip } from "./chip.ts";
import { defaultImage } from "./image.ts";
import { decodeState, encodeState, fromHex, toHex } from "./state.ts";
import { VirtualWire, type WireEvent } from "./wire.ts";

/** Options of {@link createVirtualChip}. */
export interface VirtualChipOptions {
  /** Profile id or alias ("bk7231n"). */
  chip: string;
  /** State file: loaded when it exists, written by `save()`. */
  state?: string;
  /** Initial flash content (padded with 0xFF); default: the profile's default image. */
  image?: Uint8Array;
  /** Efuse key as four words (default: the profile's expected key, else zeros). */
  key?: readonly number[];
  /** JEDEC ID, wire order (default: the profile's). */
  flashId?: readonly number[];
  /** Initial status word SR1 | SR2 << 8 (start protected, e.g. 0x4004). */
  protect?: number;
  /** Seed of the wire's randomness (garbage on baud mismatch). */
  seed?: number;
  /** Overrides of the timing model. */
  timing?: Partial<TimingModel>;
  /** What the application does with UART text (default OpenBeken's `reboot`). */
  app?: AppBehaviour;
  /** An unpowered or unwired chip that never answers. */
  silent?: boolean;
  /**
   * How the caller's command line names a chip, for remedies (default `--port virtual:<id>`;
   * `deno task emulate` says `--chip <id>`).
   */
  chipFlag?: (id: string) => string;
  /** Changes to the chip's loader family (a smaller ring buffer, say). */
  loader?: Partial<LoaderFamily>;
}

/** A virtual chip and the means to reach it. */
export interface VirtualChip {
  /** The chip's profile. */
  readonly profile: ChipProfile;
  /** The chip. */
  readonly chip: BekenChip;
  /** Its flash. */
  readonly nor: NorFlash;
  /** The clock everything runs on. */
  readonly clock: VirtualClock;
  /** A host-side link to the chip's UART (the same one on every call). */
  link(opts?: { onEvent?: (e: WireEvent) => void }): VirtualWire;
  /** The whole state (flash, status registers, efuse) in the state-file format. */
  stateBytes(): Uint8Array;
  /** Persist flash, status registers and efuse to the state file (no-op without one). */
  save(): Promise<void>;
}

/** Efuse bytes holding `key` as four little-endian words, padded to `size`. */
export function efuseFromKey(key: readonly number[], size: number): Uint8Array {
  const e = new Uint8Array(Math.max(size, 16));
  const dv = new DataView(e.buffer);
  key.slice(0, 4).forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
  return e;
}

/** Where a {@link buildVirtualChip} chip's state comes from and goes to. */
export interface StateIo {
  /** A state as written by {@link VirtualChip.stateBytes}, or null for a fresh chip. */
  stored: Uint8Array | null;
  /** Name of the state in messages (the `--state` path). */
  name: string;
  /** Persist the state bytes (called by `save()`, one save at a time). */
  write(bytes: Uint8Array): Promise<void>;
}

/** Build a virtual chip, fresh or from a stored state. */
export function buildVirtualChip(opts: VirtualChipOptions, io?: StateIo): VirtualChip {
  const profile = chipById(opts.chip);
  if (!profile) {
    throw new FlashError(
      "USAGE",
      `unknown chip "${opts.chip}"`,
      `use one of: ${CHIPS.map((c) => c.id).join(", ")}`,
    );
  }
  let nor: NorFlash;
  let efuse: Uint8Array;
  const stored = io?.stored ?? null;
  const timing = { ...DEFAULT_TIMING, ...opts.timing };
  const norTiming = norTimingOf(timing);
  if (stored) {
    // these shape a new chip only: a saved chip keeps its own flash, efuse and registers
    const shaping = [
      opts.image && "--image",
      opts.key && "--key",
      opts.flashId && "--flash-id",
      opts.protect !== undefined && "--protect",
    ].filter((x): x is string => typeof x === "string");
    if (shaping.length > 0) {
      throw new FlashError(
        "USAGE",
        `${shaping.join(", ")} would be ignored: ${io?.name} already holds a chip`,
        `drop ${shaping.join(" and ")}, or pass --state a new path to start a fresh chip`,
      );
    }
    let state;
    try {
      state = decodeState(stored);
    } catch (e) {
      throw new FlashError(
        "USAGE",
        `${io?.name}: ${(e as Error).message}`,
        "pass a file written by --state, or a new path to start a fresh chip",
      );
    }
    if (state.meta.chip !== profile.id) {
      throw new FlashError(
        "USAGE",
        `${io?.name} holds a ${state.meta.chip} chip, not ${profile.id}`,
        `use ${
          (opts.chipFlag ?? ((id) => `--port virtual:${id}`))(state.meta.chip)
        }, or another --state file`,
      );
    }
    nor = new NorFlash({
      part: flashPartFor(fromHex(state.meta.flashId)),
      timing: norTiming,
      data: state.flash,
    });
    nor.srWord = state.meta.sr;
    efuse = fromHex(state.meta.efuse);
  } else {
    const part = flashPartFor(opts.flashId ?? profile.defaultFlashId);
    if (opts.image && opts.image.length > part.size) {
      throw new FlashError(
        "BAD_IMAGE",
        `the image (${opts.image.length} bytes) is larger than the ${part.size}-byte flash of the ${profile.name}`,
        "pass an image no larger than the flash, or a --flash-id of a bigger part",
      );
    }
    const srMax = 2 ** (8 * part.srCount) - 1;
    if (
      opts.protect !== undefined &&
      !(Number.isSafeInteger(opts.protect) && opts.protect >= 0 && opts.protect <= srMax)
    ) {
      throw new FlashError(
        "USAGE",
        `status-register value 0x${
          opts.protect.toString(16)
        } does not fit the flash's ${part.srCount} status register(s)`,
        `pass a value in 0..0x${srMax.toString(16)} (SR1 | SR2 << 8), e.g. 0x4004`,
      );
    }
    const data = new Uint8Array(part.size).fill(0xff);
    if (opts.image) data.set(opts.image);
    else data.set(defaultImage(profile, part.size));
    nor = new NorFlash({ part, timing: norTiming, data, sr: opts.protect ?? 0 });
    efuse = efuseFromKey(opts.key ?? profile.key?.words ?? [0, 0, 0, 0], Math.max(profile.efuseSize, 16));
  }
  const chip = new BekenChip({
    profile,
    flash: nor,
    efuse,
    timing,
    app: opts.app,
    silent: opts.silent,
    loader: opts.loader,
  });
  const clock = new VirtualClock();
  let wire: VirtualWire | null = null;
  let saving: Promise<void> = Promise.resolve();
  const id = profile.id;
  const stateBytes = (): Uint8Array => {
    const snap = nor.snapshot();
    return encodeState({
      meta: {
        chip: id,
        flashId: toHex(nor.jedecId),
        size: snap.data.length,
        sr: snap.sr,
        efuse: toHex(efuse),
      },
      flash: snap.data,
    });
  };
  const writeState = async (): Promise<void> => {
    if (io) await io.write(stateBytes());
  };
  return {
    profile,
    chip,
    nor,
    clock,
    link(linkOpts) {
      wire ??= new VirtualWire(chip, {
        name: `virtual:${profile.id}`,
        clock,
        timing,
        seed: opts.seed ?? 1,
        onEvent: linkOpts?.onEvent,
      });
      return wire;
    },
    stateBytes,
    save() {
      // saves overlap when a server persists after every command: run them one after another
      saving = saving.then(writeState, writeState);
      return saving;
    },
  };
}
