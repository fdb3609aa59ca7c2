import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../cli/flash.ts";
import { TUYA_N_KEY, ZERO_KEY } from "../core/image/cipher.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { syntheticDump } from "./support/dumps.ts";
import { serveTcp } from "../emulator/serve.ts";
import { sampleFiles } from "../core/image/samples.ts";

async function flash(args: string[]) {
  let stdout = "", stderr = "";
  const code = await main(args, {
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stderrIsTTY: false },
    now: () => new Date("2026-12-06T01:00:00Z"),
  });
  return { code, stdout, stderr };
}

Deno.test("a whole-flash image at 0x0 keeps the chip's bootloader; an N build's is refused on a BK7231M", async () => {
  const dir = await Deno.makeTempDir();
  const state = join(dir, "m.chip");
  const chipDump = syntheticDump(ZERO_KEY);
  await (await createVirtualChip({ chip: "bk7231m", image: chipDump, state })).save();
  const base = ["--port", "virtual:bk7231m", "--state", state, "--backup-dir", join(dir, "b"), "--no-backup"];
  const flashOf = async () => (await createVirtualChip({ chip: "bk7231m", state })).nor.snapshot().data;

  // an M-style whole-flash image whose bootloader differs from the chip's (still code for the zero key)
  const mImage = syntheticDump(ZERO_KEY, { storage: false, rf: false }).subarray(0, 0x60000).slice();
  mImage[0x9000] ^= 0xff;
  mImage.fill(0x42, 0x30000, 0x31000);
  const mFile = join(dir, "m-qio.bin");
  await Deno.writeFile(mFile, mImage);
  const kept = await flash([...base, "--json", "write-flash", mFile, "--addr", "0"]);
  assert.equal(kept.code, 0, kept.stderr);
  assert.match(kept.stderr, /keeping the chip's bootloader, writing the image from 0x11000 on/);
  assert.match(kept.stderr, /bootloader differs from the chip's \(kept\): image bypass/);
  const r = JSON.parse(kept.stdout);
  assert.equal(r.keptBootloader, true);
  assert.equal(r.addr, 0x11000);
  const after = await flashOf();
  assert.deepEqual(after.subarray(0, 0x11000), chipDump.subarray(0, 0x11000), "bootloader byte-identical");
  assert.deepEqual(after.subarray(0x11000, 0x60000), mImage.subarray(0x11000), "the rest written");

  // an N build (bootloader and app for the Tuya key) is refused by the key check
  const nFile = join(dir, "n-qio.bin");
  await Deno.writeFile(nFile, syntheticDump(TUYA_N_KEY, { storage: false, rf: false }).subarray(0, 0x60000));
  const refused = await flash([...base, "write-flash", nFile, "--addr", "0"]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /remedy: use the BK7231M build/);
  // its bootloader is refused outright, even with --skip-key-check
  const outright = await flash([
    ...base,
    "--overwrite-bootloader",
    "--skip-key-check",
    "write-flash",
    nFile,
    "--addr",
    "0",
  ]);
  assert.notEqual(outright.code, 0);
  assert.match(outright.stderr, /would brick the chip/);
  assert.deepEqual(await flashOf(), after, "nothing written");

  // with --overwrite-bootloader an image whose bootloader fits the key is written whole
  const whole = await flash([...base, "--overwrite-bootloader", "write-flash", mFile, "--addr", "0"]);
  assert.equal(whole.code, 0, whole.stderr);
  assert.deepEqual((await flashOf()).subarray(0, 0x60000), mImage);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sample images are refused on a real port (here a TCP bridge to the emulator), before anything is written", async () => {
  const dir = await Deno.makeTempDir();
  const v = await createVirtualChip({ chip: "bk7231m" });
  const before = v.nor.snapshot().data.slice();
  const server = serveTcp(v.chip, { hostname: "127.0.0.1", port: 0 }, { pace: "none" });
  try {
    const file = join(dir, "s.bin");
    await Deno.writeFile(file, sampleFiles()["sample-bk7231m-ua.bin"]);
    const r = await flash([
      "--port",
      server.address,
      "--baud",
      "115200",
      "--no-backup",
      "write-flash",
      file,
      "--addr",
      "0x11000",
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /emulator-only sample images, not firmware/);
    assert.deepEqual(v.nor.snapshot().data, before);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
