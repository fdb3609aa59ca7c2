/**
 * The eFuse key guard (docs/uart.md §5.7): which key a chip mode expects, and refusing (or
 * warning about) a chip whose key says it is another chip, such as a BK7231M driven as a
 * BK7231N.
 *
 * @module
 */

import { type ChipProfile, CHIPS, formatKey, TUYA_KEY } from "../chips/profiles.ts";
import { FlashError } from "../errors.ts";

/** What the key guard reports through, and whether it only warns. */
export interface KeyGuardContext {
  /** Turn a refusal into a warning (`--skip-key-check`). */
  override: boolean;
  /** Report a warning. */
  warn: (message: string) => void;
}

/** `a` is the key `b`, word by word (a missing key is no key). */
export function sameKey(a: readonly number[] | null, b: readonly number[]): boolean {
  return a !== null && a.every((w, i) => w >>> 0 === b[i] >>> 0);
}

/**
 * The N/M guard (docs/uart.md §5.7), both ways. A key that is exactly another chip's expected key
 * (`keyChip`: the Tuya key on a chip asked for as BK7231M) is refused in either mode: the
 * efuse says which chip this is, and a Tuya-key bootloader and BK7231M firmware do not mix
 * (libretiny#262). The GUI only warns in M mode; it also warns for keys that name no chip,
 * and so does this guard in a "warn" mode.
 */
export function checkKey(
  profile: ChipProfile,
  key: [number, number, number, number] | null,
  ctx: KeyGuardContext,
  keyChip: ChipProfile | null,
): void {
  if (!profile.key || profile.key.check === "none" || !key) return;
  if (sameKey(key, profile.key.words)) return;
  const zero = key.every((w) => w === 0);
  const tuya = sameKey(key, TUYA_KEY);
  if (keyChip && keyChip.id !== profile.id && profile.key.check === "warn") {
    const cause = `this chip's key ${
      formatKey(key)
    } is the ${keyChip.name} key: it is a ${keyChip.name}, not a ${profile.name}`;
    if (ctx.override) {
      ctx.warn(`${cause} (continuing: key check overridden)`);
      return;
    }
    throw new FlashError(
      "WRONG_KEY",
      cause,
      `use --chip ${keyChip.id} (or --skip-key-check if you are sure it is a ${profile.name})`,
    );
  }
  if (profile.key.check === "warn") {
    const other = tuya
      ? CHIPS.find((c) => c.key && sameKey(c.key.words, TUYA_KEY) && c.chipId === profile.chipId)
      : null;
    ctx.warn(
      other
        ? `this chip carries the Tuya key: it is a ${other.name}; consider --chip ${other.id}`
        : `non-standard key ${formatKey(key)} for ${profile.name} (all zeros expected)`,
    );
    return;
  }
  const cause = zero
    ? "this chip's key is all zeros: it is a BK7231M/BL2028N"
    : `this chip's key ${formatKey(key)} is not the ${profile.name} key ${formatKey(profile.key.words)}`;
  const alt = zero
    ? CHIPS.find((c) =>
      c.key && c.chipId === profile.chipId && c.id !== profile.id && c.key.words.every((w) => w === 0)
    )
    : null;
  if (ctx.override) {
    ctx.warn(`${cause} (continuing: key check overridden)`);
    return;
  }
  throw new FlashError(
    "WRONG_KEY",
    cause,
    alt
      ? `use --chip ${alt.id}`
      : "check the chip mode (--chip), or pass --skip-key-check if this key is expected",
  );
}
