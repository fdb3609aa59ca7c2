import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../cli/flash.ts";
import { parseDuration, parseNumber } from "../cli/numbers.ts";
import { Output } from "../cli/output.ts";
import { parsePortSpec } from "../core/io/port_spec.ts";
import { FlashError } from "../core/errors.ts";
import { crc32 } from "../core/crc.ts";
import { createVirtualChip } from "../emulator/virtual.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const NOW = () => new Date("2026-11-22T01:30:12Z");

async function flash(args: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stderrIsTTY: false },
    now: NOW,
  });
  return { code, stdout, stderr };
}

function onlyJson(r: Run): Record<string, unknown> {
  const lines = r.stdout.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `exactly one line on stdout, got: ${r.stdout}`);
  return JSON.parse(lines[0]);
}

/** Flash content of a virtual chip's state file. */
async function stateFlash(chip: string, state: string): Promise<Uint8Array> {
  const v = await createVirtualChip({ chip, state });
  return v.nor.snapshot().data;
}

function assertOneErrorAndRemedy(r: Run): void {
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 2, r.stderr);
  assert.match(lines[0], /^error: /);
  assert.match(lines[1], /^remedy: /);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}

Deno.test("numbers and port specs parse as documented", () => {
  assert.equal(parseNumber("0x11000"), 0x11000);
  assert.equal(parseNumber("2M"), 0x200000);
  assert.equal(parseNumber("4K"), 4096);
  assert.equal(parseNumber("4KiB"), 4096);
  assert.equal(parseNumber("69632"), 69632);
  assert.throws(() => parseNumber("0x"), /not a number/);
  assert.throws(() => parseNumber("12Q"), /not a number/);
  assert.equal(parseDuration("20"), 20000);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.deepEqual(parsePortSpec("virtual:BK7231N"), { kind: "virtual", chip: "bk7231n" });
  assert.deepEqual(parsePortSpec("virtual:cb2s"), { kind: "virtual", chip: "bk7231n" });
  assert.deepEqual(parsePortSpec("/dev/ttyUSB0"), { kind: "serial", path: "/dev/ttyUSB0" });
  assert.deepEqual(parsePortSpec("COM3"), { kind: "serial", path: "COM3" });
  assert.deepEqual(parsePortSpec("tcp://127.0.0.1:7231"), { kind: "tcp", host: "127.0.0.1", port: 7231 });
  assert.deepEqual(parsePortSpec("ch341a"), { kind: "ch341a", index: 0 });
  assert.deepEqual(parsePortSpec("ch341a:2"), { kind: "ch341a", index: 2 });
  assert.deepEqual(parsePortSpec("ch341a:virtual:bk7231n"), { kind: "ch341a-virtual", chip: "bk7231n" });
  assert.deepEqual(parsePortSpec("spidev:/dev/spidev0.0"), { kind: "spidev", path: "/dev/spidev0.0" });
  assert.deepEqual(parsePortSpec(undefined), { kind: "auto" });
  assert.throws(() => parsePortSpec("virtual:nope"), /unknown chip/);
  assert.throws(() => parsePortSpec("tcp://host"), /tcp:\/\/host:port/);
  assert.throws(() => parsePortSpec("ch341a:x"), /ch341a:<n>/);
});

Deno.test("chip-info --json: BK7231N with 2 MiB and the Tuya key; BK7231M with a zero key", async () => {
  const n = await flash(["--port", "virtual:bk7231n", "chip-info", "--json"]);
  assert.equal(n.code, 0, n.stderr);
  const nj = onlyJson(n);
  assert.equal(nj.ok, true);
  assert.equal(nj.chip, "BK7231N");
  assert.equal(nj.flashId, "eb6015");
  assert.equal(nj.flashSize, 2 * 1024 * 1024);
  assert.equal(nj.key, "510fb093 a3cbeadc 5993a17e c7adeb03");
  assert.equal(nj.bootloader, "bl_bk7231n_1.0.1");

  const m = await flash(["--json", "--port", "virtual:bk7231m", "chip-info"]);
  assert.equal(m.code, 0, m.stderr);
  const mj = onlyJson(m);
  assert.equal(mj.chip, "BK7231M");
  assert.equal(mj.key, "00000000 00000000 00000000 00000000");
});

Deno.test("read-flash writes the whole 2 MiB chip, with the chip's CRC", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const state = join(dir, "s.chip");
    const out = join(dir, "a.bin");
    const r = await flash([
      "--port",
      "virtual:bk7231n",
      "--state",
      state,
      "read-flash",
      "--out",
      out,
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const j = onlyJson(r);
    const data = await Deno.readFile(out);
    assert.equal(data.length, 2 * 1024 * 1024);
    assert.equal(j.size, data.length);
    assert.equal(j.addr, 0);
    assert.equal(j.out, out);
    const chip = await stateFlash("bk7231n", state);
    assert.equal(j.crc32, crc32(chip).toString(16).padStart(8, "0"));
    assert.deepEqual(data, chip);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bk7231t: write-flash at 0x11000 backs up first, verify-flash passes, a write at 0 is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const state = join(dir, "t.chip");
    const backups = join(dir, "backups");
    const app = join(dir, "app.bin");
    const image = new Uint8Array(150_000).map((_, i) => (i * 13 + (i >> 9)) & 0xff);
    await Deno.writeFile(app, image);
    const common = ["--port", "virtual:bk7231t", "--state", state, "--backup-dir", backups];
    assert.equal((await flash([...common, "chip-info"])).code, 0);
    const before = await stateFlash("bk7231t", state);

    const w = await flash([...common, "write-flash", app, "--addr", "0x11000", "--json"]);
    assert.equal(w.code, 0, w.stderr);
    const wj = onlyJson(w);
    assert.equal(wj.verified, true);
    assert.equal(wj.backup, join(backups, "BK7231T_noid_20261122T013012Z.bin"));
    assert.deepEqual(
      await Deno.readFile(wj.backup as string),
      before,
      "the backup holds the flash as it was before",
    );
    const sidecar = JSON.parse(await Deno.readTextFile(join(backups, "BK7231T_noid_20261122T013012Z.json")));
    assert.equal(sidecar.chip, "BK7231T");
    assert.equal(sidecar.size, before.length);
    assert.equal(sidecar.crc32, crc32(before).toString(16).padStart(8, "0"));
    const after = await stateFlash("bk7231t", state);
    assert.deepEqual(after.subarray(0x11000, 0x11000 + image.length), image);
    assert.deepEqual(after.subarray(0, 0x11000), before.subarray(0, 0x11000));

    const v = await flash([...common, "verify-flash", app, "--addr", "0x11000"]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /flash matches/);

    const refused = await flash([...common, "write-flash", app, "--addr", "0"]);
    assert.notEqual(refused.code, 0);
    assertOneErrorAndRemedy(refused);
    assert.match(refused.stderr, /refusing to write 0x0\.\.0x10fff: that is the bootloader/);
    assert.match(refused.stderr, /--overwrite-bootloader/);
    assert.equal(refused.stdout, "");
    assert.deepEqual(await stateFlash("bk7231t", state), after);

    const bad = await flash([...common, "verify-flash", app, "--addr", "0x12000"]);
    assert.equal(bad.code, 11);
    assert.match(bad.stderr, /differs from the image/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("errors: one line of cause and one of remedy, distinct exit codes, a JSON object with --json, stack only with -v", async () => {
  const wrong = await flash(["--port", "virtual:bk7231m", "--chip", "bk7231n", "chip-info"]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /error: this chip's key is all zeros/);
  assert.match(wrong.stderr, /remedy: use --chip bk7231m/);
  assert.doesNotMatch(wrong.stderr, /\n\s+at /);

  const usage = await flash(["--port", "virtual:bk7231n", "frobnicate"]);
  assertOneErrorAndRemedy(usage);
  assert.equal(usage.code, 2);

  const dir = await Deno.makeTempDir();
  const out = join(dir, "never.bin");
  const range = await flash([
    "--port",
    "virtual:bk7231n",
    "read-flash",
    "--out",
    out,
    "--addr",
    "2M",
    "--json",
  ]);
  assert.equal(range.code, 3);
  assertOneErrorAndRemedy(range);
  const j = onlyJson(range);
  assert.equal(j.ok, false);
  assert.equal(j.code, "BAD_RANGE");
  assert.equal(typeof j.error, "string");
  assert.equal(typeof j.remedy, "string");
  assert.notEqual(wrong.code, usage.code);
  assert.notEqual(usage.code, range.code);

  const verbose = await flash([
    "-v",
    "--port",
    "virtual:bk7231n",
    "read-flash",
    "--out",
    out,
    "--addr",
    "2M",
  ]);
  assert.equal(verbose.code, 3);
  assert.match(verbose.stderr, /\n\s+at /);
  assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing written");
  await Deno.remove(dir);

  const noDir = await flash(["--port", "virtual:bk7231n", "read-flash", "--out", join(out, "x", "y.bin")]);
  assert.equal(noDir.code, 2);
  assertOneErrorAndRemedy(noDir);
  assert.match(noDir.stderr, /directory does not exist/);
});

Deno.test("SPI through a virtual CH341A: chip-info, bootloader write only with --yes, same flash as the UART path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const state = join(dir, "spi.chip");
    const boot = join(dir, "boot.bin");
    const image = new Uint8Array(0x12345).map((_, i) => (i * 7 + 3) & 0xff);
    await Deno.writeFile(boot, image);
    const common = [
      "--port",
      "ch341a:virtual:bk7231n",
      "--chip",
      "beken-spi",
      "--state",
      state,
      "--backup-dir",
      join(dir, "b"),
    ];

    const info = await flash([...common, "chip-info", "--json"]);
    assert.equal(info.code, 0, info.stderr);
    const ij = onlyJson(info);
    assert.equal(ij.flashId, "eb6015");
    assert.equal(ij.flashSize, 2 * 1024 * 1024);
    assert.match(info.stderr, /SPI-mode entry: attempt 1\/\d+/);

    const refused = await flash([...common, "write-flash", boot, "--addr", "0"]);
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /--yes/);

    const w = await flash([...common, "--yes", "write-flash", boot, "--addr", "0", "--json"]);
    assert.equal(w.code, 0, w.stderr);
    assert.ok(onlyJson(w).backup);
    assert.deepEqual((await stateFlash("bk7231n", state)).subarray(0, image.length), image);

    const viaUart = await flash([
      "--port",
      "virtual:bk7231n",
      "--state",
      state,
      "verify-flash",
      boot,
      "--addr",
      "0",
    ]);
    assert.equal(viaUart.code, 0, viaUart.stderr);

    const erase = await flash([
      ...common,
      "--yes",
      "erase-region",
      "--addr",
      "0",
      "--size",
      "0x20000",
      "--json",
    ]);
    assert.equal(erase.code, 0, erase.stderr);
    const ej = onlyJson(erase);
    assert.equal(ej.blockErases, 2);
    assert.ok((await stateFlash("bk7231n", state)).subarray(0, 0x20000).every((b) => b === 0xff));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failed write prints cause, remedy and the damaged range with the backup, and exits 10", () => {
  let stdout = "";
  let stderr = "";
  const io = {
    stdout: (t: string) => (stdout += t),
    stderr: (t: string) => (stderr += t),
    stderrIsTTY: false,
  };
  const e = new FlashError("WRITE_FAILED", "write failed at 0x30000: no reply", "check the 3.3 V supply", {
    damage: { start: 0x30000, end: 0x50000, backup: "backups/BK7231N_eb6015_20261122T013012Z.bin" },
  });
  assert.equal(new Output(io, { json: true, verbose: false }).error(e), 10);
  const lines = stderr.trimEnd().split("\n");
  assert.deepEqual(lines, [
    "error: write failed at 0x30000: no reply",
    "remedy: check the 3.3 V supply",
    "flash in 0x30000..0x4ffff may now differ from the image; backup of the whole chip: backups/BK7231N_eb6015_20261122T013012Z.bin",
  ]);
  const j = JSON.parse(stdout);
  assert.equal(j.code, "WRITE_FAILED");
  assert.deepEqual(j.damage, {
    start: 0x30000,
    end: 0x50000,
    backup: "backups/BK7231N_eb6015_20261122T013012Z.bin",
  });

  stderr = "";
  assert.equal(new Output(io, { json: false, verbose: false }).error(new TypeError("boom")), 1);
  assert.match(stderr, /^error: internal error: boom\nremedy: /);
  assert.doesNotMatch(stderr, /\n\s+at /);
});
