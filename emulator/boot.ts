/**
 * What the emulated chip does after a reset, once its boot window closes: what a real
 * BootROM and bootloader check before running code. The flash controller decrypts with the
 * efuse key and checks the CRC16 of every 34-byte chunk it fetches, so a bootloader or app
 * built for another key, or with broken framing, runs garbage: the chip stays silent on its
 * UART (what users of a "bricked" BK7231M see after writing an N build). When both decrypt
 * to code and their framing holds, the emulator prints one line at 115200 on UART1, where
 * real firmware starts logging. The line is the emulator's own marker (`bekenlab-emu: boot
 * ...`), not a copy of any firmware's first line: tests and users look for it by that prefix.
 *
 * @module
 */

import type { ChipProfile } from "../core/chips/profiles.ts";
import type { KeyWords } from "../core/image/cipher.ts";
import { CHUNK_FLASH, unframe } from "../core/image/framing.ts";
import { classifyImage, classOfKey, decryptsWith } from "../core/image/key_class.ts";
import { APP_START } from "../core/image/inspect.ts";

/** Prefix of the boot line. */
export const BOOT_LINE_PREFIX = "bekenlab-emu: boot ok";
/** Baud rate of the boot line (the chip's UART after reset). */
export const BOOT_BAUD = 115200;
/** How much of the app the check reads (the part a boot fetches first). */
const APP_CHECK_BYTES = CHUNK_FLASH * 1024;

/** The outcome of a boot. */
export interface BootCheck {
  /** Bootloader and app both have valid CRC16 framing and decrypt to code with the efuse key. */
  boots: boolean;
  /** The line printed on UART1 when it boots, else null (silent). */
  line: string | null;
  /** Why it does not boot, or what booted. */
  reason: string;
}

/** The efuse key words of `efuse` (four little-endian words), or null on chips without a readable efuse. */
export function efuseKey(profile: ChipProfile, efuse: Uint8Array): KeyWords | null {
  if (profile.efuseSize === 0 || efuse.length < 16) return null;
  const dv = new DataView(efuse.buffer, efuse.byteOffset, 16);
  return [dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true), dv.getUint32(12, true)];
}

function usedLength(b: Uint8Array): number {
  for (let o = 0; o + CHUNK_FLASH <= b.length; o += CHUNK_FLASH) {
    if (b.subarray(o, o + CHUNK_FLASH).every((x) => x === 0xff)) return o;
  }
  return b.length;
}

/** Check the bootloader at 0x0 and the app at 0x11000 of `read` against the chip's key. */
export function bootCheck(
  profile: ChipProfile,
  key: KeyWords | null,
  read: (addr: number, len: number) => Uint8Array,
): BootCheck {
  const silent = (reason: string): BootCheck => ({ boots: false, line: null, reason });
  const want = key ? classOfKey(key) : null;
  const parts = [
    { name: "bootloader", at: 0, bytes: read(0, Math.floor(APP_START / CHUNK_FLASH) * CHUNK_FLASH) },
    { name: "app", at: APP_START, bytes: read(APP_START, APP_CHECK_BYTES) },
  ];
  const seen: string[] = [];
  for (const p of parts) {
    const c = classifyImage(p.bytes, p.at);
    if (c.class === "unknown") return silent(`${p.name}: ${c.evidence}`);
    // the controller fetches code up to where the image ends: the first erased chunk
    const f = unframe(p.bytes.subarray(0, usedLength(p.bytes)));
    if (f.invalid > 0) {
      return silent(
        `${p.name}: CRC16 of the chunk at 0x${(p.at + f.firstInvalid).toString(16)} does not match`,
      );
    }
    if (key !== null && !decryptsWith(p.bytes, p.at, key)) {
      return silent(
        `${p.name} is built for ${c.class}${
          c.key ? ` (${c.key})` : ""
        }: it does not decrypt with the efuse key (${want})`,
      );
    }
    if (key === null && c.class === "other" && c.key === null) return silent(`${p.name}: ${c.evidence}`);
    seen.push(`${p.name} ${c.class}`);
  }
  const line = `${BOOT_LINE_PREFIX}: ${profile.name}, ${seen.join(", ")}`;
  return { boots: true, line, reason: line };
}
