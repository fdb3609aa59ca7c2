/**
 * Child process of the benchmark's memory figure (f): write an image file of `--mib` MiB to a
 * virtual BK7231N whose flash part has the same size, with the CLI's pieces and defaults (file
 * image read piece by piece, backup streamed into a directory, after-write image saved), then
 * print the process's peak resident set size as JSON. Run by bench/rss.ts; runs alone too:
 *
 * ```sh
 * deno run -A bench/rss_child.ts --mib 16
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { DirectoryStore, openImage } from "../core/flasher/files.ts";
import { chipById } from "../core/chips/profiles.ts";
import { createContext } from "../core/flasher/context.ts";
import { writeFlash } from "../core/flasher/write.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { createVirtualChip } from "../emulator/virtual.ts";

/** Winbond parts by size in MiB (JEDEC capacity byte = log2 of the size). */
const PARTS: Record<number, number[]> = {
  2: [0xef, 0x40, 0x15],
  4: [0xef, 0x40, 0x16],
  8: [0xeb, 0x60, 0x17],
  16: [0xef, 0x40, 0x18],
};

/** Peak and current RSS in MiB from /proc (Linux); the current one elsewhere. */
function rss(): { peakMiB: number; nowMiB: number } {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const kib = (k: string) => Number(status.match(new RegExp(`${k}:\\s+(\\d+) kB`))?.[1] ?? NaN);
    return { peakMiB: kib("VmHWM") / 1024, nowMiB: kib("VmRSS") / 1024 };
  } catch {
    const now = Deno.memoryUsage().rss / 2 ** 20;
    return { peakMiB: now, nowMiB: now };
  }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--mib");
  const mib = i >= 0 ? Number(Deno.args[i + 1]) : 16;
  const id = PARTS[mib];
  if (!id) throw new Error(`no part of ${mib} MiB`);
  const dir = await Deno.makeTempDir({ prefix: "bekenlab-rss-" });
  try {
    const path = join(dir, "image.bin");
    // generate the image in 1 MiB pieces, so the child never holds it whole
    const f = await Deno.open(path, { write: true, create: true });
    const chunk = new Uint8Array(1 << 20);
    let x = 0x9e3779b9;
    for (let m = 0; m < mib; m++) {
      for (let k = 0; k < chunk.length; k++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        chunk[k] = x & 0xff;
      }
      for (let o = 0; o < chunk.length;) o += await f.write(chunk.subarray(o));
    }
    f.close();
    const v = await createVirtualChip({ chip: "bk7231n", flashId: id });
    const link = v.link();
    const baud = 921600;
    const { target } = await openUartTarget(link, { chip: chipById("bk7231n"), baud });
    const ctx = await createContext(target, link.clock, { baud });
    const image = await openImage(path);
    const before = rss();
    const r = await writeFlash(ctx, image, {
      addr: 0,
      overwriteBootloader: true,
      store: new DirectoryStore(join(dir, "backups")),
      identity: {
        chip: "BK7231N",
        flashId: id.map((b) => b.toString(16).padStart(2, "0")).join(""),
        key: null,
      },
      createdAt: new Date(Date.UTC(2026, 0, 3)),
      saveResult: true,
    });
    image.close();
    await target.close();
    const after = rss();
    console.log(JSON.stringify({
      mib,
      changed: r.changed,
      flashMiB: v.nor.size / 2 ** 20,
      rssBeforeJobMiB: before.nowMiB,
      peakRssMiB: after.peakMiB,
      modelledS: link.clock.now() / 1000,
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
