/**
 * The write pre-flight key check: an app image (written at 0x11000) or a whole-flash image
 * (at 0x0) built for a different key class than the chip's efuse key will not boot, so it is
 * refused with cause and remedy unless `--skip-key-check` (the BK7231M brick: an N build onto
 * a zero-key chip).
 *
 * @module
 */

import { FlashError } from "../errors.ts";
import {
  classifyImage,
  classOfKey,
  decryptsWith,
  type KeyClassification,
  parseKeyText,
} from "./key_class.ts";
import { APP_START } from "./inspect.ts";

const NAMES: Record<string, string> = {
  "tuya-n": "the Tuya N key (BK7231N)",
  "bypass": "a bypass (zero) key (BK7231M / BL2028N, BK7238)",
  "other": "another key",
};

const REMEDY: Record<string, string> = {
  "bypass": "use the BK7231M build (OpenBK7231M_*, LibreTiny's bk7231m / generic-bk7231m-qfn32-tuya board)",
  "tuya-n": "use the BK7231N build (OpenBK7231N_*)",
  "other": "use a build for this chip's key",
};

/** What the check decided. */
export interface KeyCheckResult {
  /** One line for stderr. */
  note: string;
  /** The key the image is built for, as {@link classifyImage} found it. */
  image: KeyClassification | null;
}

/**
 * Check `head` (the image's first bytes, at least 0x12000 for a whole-flash image) written at
 * `addr` against the chip's efuse key text (`s.identity.key`). Throws WRONG_KEY on a mismatch
 * unless `skip`; otherwise returns a note.
 */
export function checkImageKey(
  head: Uint8Array,
  addr: number,
  chipKey: string | null,
  skip: boolean,
): KeyCheckResult | null {
  let at: number;
  let part: Uint8Array;
  if (addr === APP_START) {
    at = APP_START, part = head;
  } else if (addr === 0 && head.length > APP_START + 34) {
    at = APP_START, part = head.subarray(APP_START);
  } else return null;
  const image = classifyImage(part, at);
  if (image.class === "unknown") {
    return {
      note: `key check: the image's key could not be determined (${image.evidence}); writing it`,
      image,
    };
  }
  const words = chipKey ? parseKeyText(chipKey) : null;
  if (!words) {
    return {
      note: `key check: image built for ${NAMES[image.class]}; the chip's efuse key is not readable here`,
      image,
    };
  }
  const chipClass = classOfKey(words);
  if (decryptsWith(part, at, words)) {
    return { note: `key check: image built for ${NAMES[chipClass]}, as the chip's efuse key`, image };
  }
  if (image.class === "other" && image.key === null) {
    return {
      note: `key check: the image's key could not be determined (${image.evidence}); writing it`,
      image,
    };
  }
  const cause = `the image is built for ${
    NAMES[image.class]
  } (${image.evidence}), but this chip's efuse key is ${NAMES[chipClass]} (${chipKey}): it will not boot`;
  if (skip) return { note: `key check skipped (--skip-key-check): ${cause}`, image };
  throw new FlashError(
    "WRONG_KEY",
    cause,
    `${REMEDY[chipClass]}; or pass --skip-key-check to write it anyway`,
  );
}
