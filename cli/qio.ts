/**
 * Whole-flash ("QIO") images written at 0x0 over the boot UART: such an image starts with a
 * bootloader of its own. By default the chip's bootloader is kept and the image is written
 * from 0x11000 on (what BK7231GUIFlashTool does on a BK7231M: "leave the old M-style
 * bootloader, and only append OBK to it"). With --overwrite-bootloader the image's bootloader
 * is written too, but never when it does not decrypt with the chip's efuse key: a Tuya-key
 * bootloader on a BK7231M bricks it (libretiny issue #262), so that is refused outright, even
 * with --skip-key-check.
 *
 * @module
 */

import { FlashError } from "../core/errors.ts";
import type { FlasherContext } from "../core/flasher/context.ts";
import { hex, humanSize } from "../core/flasher/range.ts";
import { readFlash } from "../core/flasher/read.ts";
import type { ByteSource } from "../core/flasher/source.ts";
import { bootloaderByCrc } from "../core/chips/bootloaders.ts";
import { crc32 } from "../core/crc.ts";
import {
  classifyImage,
  decryptsWith,
  type KeyClassification,
  parseKeyText,
} from "../core/image/key_class.ts";
import { APP_START } from "../core/image/inspect.ts";
import type { Output } from "./output.ts";

/** How a write of a whole-flash image goes. */
export interface QioPlan {
  addr: number;
  data: Uint8Array | ByteSource;
  /** The chip's bootloader is kept (the image's first 0x11000 bytes are not written). */
  keptBootloader: boolean;
  /** The image's bootloader region (for the comparison with the chip's). */
  imageBootloader: Uint8Array | null;
}

function sizeOf(d: Uint8Array | ByteSource): number {
  return d instanceof Uint8Array ? d.length : d.size;
}

function offsetSource(d: Uint8Array | ByteSource, from: number): Uint8Array | ByteSource {
  if (d instanceof Uint8Array) return d.subarray(from);
  return { size: d.size - from, read: (o, n) => d.read(o + from, n) };
}

/** Whether `head` (an image's first bytes) starts with a bootloader: known CRC or code under some key. */
export function startsWithBootloader(head: Uint8Array): boolean {
  if (head.length < 257) return false;
  if (bootloaderByCrc(crc32(head.subarray(0, 257))) || bootloaderByCrc(crc32(head.subarray(0, 256)))) {
    return true;
  }
  const c = classifyImage(head, 0);
  return c.class === "tuya-n" || c.class === "bypass" || (c.class === "other" && c.key !== null);
}

/**
 * Decide how to write `data` at `addr`: unchanged, or (a whole-flash image at 0x0 over UART)
 * from 0x11000 with the chip's bootloader kept, or whole after the bootloader key check.
 */
export async function planWholeFlash(
  out: Output,
  data: Uint8Array | ByteSource,
  addr: number,
  o: { uart: boolean; overwriteBootloader: boolean; chipKey: string | null },
): Promise<QioPlan> {
  const unchanged: QioPlan = { addr, data, keptBootloader: false, imageBootloader: null };
  if (addr !== 0 || !o.uart || sizeOf(data) <= APP_START) return unchanged;
  const head = data instanceof Uint8Array ? data.subarray(0, APP_START) : await data.read(0, APP_START);
  if (!startsWithBootloader(head)) return unchanged;
  if (!o.overwriteBootloader) {
    out.note(
      `whole-flash image: keeping the chip's bootloader, writing the image from ${hex(APP_START)} on (${
        humanSize(sizeOf(data) - APP_START)
      }); --overwrite-bootloader writes its bootloader too`,
    );
    return {
      addr: APP_START,
      data: offsetSource(data, APP_START),
      keptBootloader: true,
      imageBootloader: head,
    };
  }
  const key = o.chipKey ? parseKeyText(o.chipKey) : null;
  const cls = classifyImage(head, 0);
  if (key && !decryptsWith(head, 0, key)) {
    throw new FlashError(
      "WRONG_KEY",
      `the image's bootloader is built for ${cls.class}${
        cls.key ? ` (${cls.key})` : ""
      } (${cls.evidence}), ` +
        `not for this chip's efuse key (${o.chipKey}): writing it would brick the chip`,
      "write the image without --overwrite-bootloader: the chip's own bootloader is kept (--skip-key-check does not apply here)",
    );
  }
  out.note(
    key
      ? `the image's bootloader decrypts with the chip's efuse key: writing it (--overwrite-bootloader)`
      : `the chip's efuse key is not readable here: the image's bootloader (${cls.class}) is written unchecked`,
  );
  return { ...unchanged, imageBootloader: head };
}

/** After the plan kept the chip's bootloader: compare it with the image's and say how they differ. */
export async function compareBootloaders(ctx: FlasherContext, out: Output, plan: QioPlan): Promise<void> {
  if (!plan.keptBootloader || !plan.imageBootloader) return;
  const chip = (await readFlash(ctx, { addr: 0, size: APP_START })).data;
  const img = plan.imageBootloader;
  if (chip.every((b, i) => b === img[i])) {
    out.note("the image's bootloader is the one on the chip");
    return;
  }
  const desc = (c: KeyClassification) => `${c.class}${c.key ? ` (${c.key})` : ""}: ${c.evidence}`;
  out.note(`the image's bootloader differs from the chip's (kept): image ${desc(classifyImage(img, 0))}`);
  out.note(`  chip's bootloader: ${desc(classifyImage(chip, 0))}`);
}
