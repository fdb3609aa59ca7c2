/**
 * `deno task demo`: the main job end to end on the built-in emulator, in a scratch directory —
 * identify a virtual BK7231N, back up its whole flash, write an application image (a backup
 * is taken first), verify it, and show the bootloader guard refusing a write at 0.
 *
 * @module
 */

import { main } from "./flash.ts";

const dir = await Deno.makeTempDir({ prefix: "bekenlab-demo-" });
const state = `${dir}/chip.state`;
const app = `${dir}/app.bin`;
const image = new Uint8Array(96 * 1024);
for (let i = 0; i < image.length; i++) image[i] = (i * 131 + (i >> 8)) & 0xff;
await Deno.writeFile(app, image);

const port = ["--port", "virtual:bk7231n", "--state", state, "--backup-dir", `${dir}/backups`];
const steps: { title: string; args: string[]; expect: number }[] = [
  { title: "identify the chip", args: [...port, "chip-info"], expect: 0 },
  { title: "back up the whole flash", args: [...port, "read-flash", "--out", `${dir}/full.bin`], expect: 0 },
  { title: "write an app at 0x11000", args: [...port, "write-flash", app, "--addr", "0x11000"], expect: 0 },
  { title: "verify it", args: [...port, "verify-flash", app, "--addr", "0x11000"], expect: 0 },
  { title: "a write at 0 is refused", args: [...port, "write-flash", app, "--addr", "0"], expect: 4 },
];

let failed = 0;
for (const s of steps) {
  console.log(`\n== ${s.title}: deno task flash ${s.args.join(" ")}`);
  const code = await main(s.args);
  const ok = code === s.expect;
  if (!ok) failed++;
  console.log(`-- exit ${code} (${ok ? "as expected" : `expected ${s.expect}`})`);
}
console.log(`\nfiles are in ${dir}`);
Deno.exit(failed ? 1 : 0);
