import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../cli/flash.ts";
import { TUYA_N_KEY, ZERO_KEY } from "../core/image/cipher.ts";
import { plainCode, storedImage } from "../core/image/encode.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { BOOT_LINE_PREFIX } from "../emulator/boot.ts";
import { pseudoRandom } from "../hil/images.ts";
import { PLANTED, syntheticDump, syntheticStorage } from "./support/dumps.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function flash(args: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stderrIsTTY: false },
    now: () => new Date("2026-12-06T01:00:00Z"),
  });
  return { code, stdout, stderr };
}

function json(r: Run): Record<string, unknown> {
  const lines = r.stdout.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `one line on stdout: ${r.stdout}\n${r.stderr}`);
  return JSON.parse(lines[0]);
}

Deno.test("inspect a synthetic dump file: report, --json fields, OpenBeken template", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "dump.bin");
  await Deno.writeFile(file, syntheticDump(TUYA_N_KEY));
  const human = await flash(["inspect", file]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /Chip: +BK7231N/);
  assert.match(human.stdout, /P6: relay \(rl1_pin\) -> Rel;1/);
  assert.match(human.stdout, /MAC 3a:1f:8d:12:34:56/);
  const tpl = join(dir, "obk.json");
  const r = json(await flash(["inspect", file, "--json", "--obk-template", tpl]));
  for (
    const k of [
      "source",
      "size",
      "kind",
      "chip",
      "flashSize",
      "bootloader",
      "partitions",
      "app",
      "rbl",
      "tuya",
      "rf",
      "warnings",
    ]
  ) {
    assert.ok(k in r, `--json has ${k}`);
  }
  const t = JSON.parse(await Deno.readTextFile(tpl));
  assert.deepEqual(t.pins, { "6": "Rel;1", "7": "Rel_n;2", "23": "WifiLED_n;0", "24": "Btn;1" });
  assert.equal(t.chip, "BK7231N");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("secrets never appear in inspect output without --show-secrets", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "dump.bin");
  await Deno.writeFile(file, syntheticDump(TUYA_N_KEY));
  const region = join(dir, "region.bin");
  await Deno.writeFile(region, syntheticStorage());
  const planted = [PLANTED.ssid, PLANTED.passwd, PLANTED.psk, PLANTED.auzkey, PLANTED.uuid];
  for (const f of [file, region]) {
    for (const extra of [[], ["--json"]]) {
      const r = await flash(["inspect", f, ...extra]);
      assert.equal(r.code, 0, r.stderr);
      for (const s of planted) {
        assert.ok(!(r.stdout + r.stderr).includes(s), `${s} leaked (${extra.join(" ")})`);
      }
    }
  }
  const shown = await flash(["inspect", file, "--json", "--show-secrets"]);
  for (const s of planted) assert.ok(shown.stdout.includes(s), `--show-secrets shows ${s}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("virtual:bk7231m: an N-key app is refused; forced, it is written and does not boot; the M build boots", async () => {
  const dir = await Deno.makeTempDir();
  const state = join(dir, "m.chip");
  const boot = join(dir, "boot-m.bin"), appN = join(dir, "app-n.bin"), appM = join(dir, "app-m.bin");
  await Deno.writeFile(boot, storedImage(plainCode(pseudoRandom("t/boot", 0x3000)), ZERO_KEY, 0));
  await Deno.writeFile(appN, storedImage(plainCode(pseudoRandom("t/app", 0x4000)), TUYA_N_KEY, 0x11000));
  await Deno.writeFile(appM, storedImage(plainCode(pseudoRandom("t/app", 0x4000)), ZERO_KEY, 0x11000));
  const base = [
    "--port",
    "virtual:bk7231m",
    "--state",
    state,
    "--backup-dir",
    join(dir, "backups"),
    "--no-backup",
  ];
  const bootOf = async () => (await createVirtualChip({ chip: "bk7231m", state })).chip.bootCheck();

  const b = await flash([...base, "--overwrite-bootloader", "write-flash", boot, "--addr", "0"]);
  assert.equal(b.code, 0, b.stderr);
  const refused = await flash([...base, "write-flash", appN, "--addr", "0x11000"]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /^error: .*Tuya N key.*will not boot/m);
  assert.match(refused.stderr, /^remedy: use the BK7231M build/m);
  const forced = await flash([...base, "--skip-key-check", "write-flash", appN, "--addr", "0x11000"]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, /key check skipped/);
  const bad = await bootOf();
  assert.ok(!bad.boots, bad.reason);
  assert.match(bad.reason, /^app .*does not decrypt with the efuse key/);
  const good = await flash([...base, "write-flash", appM, "--addr", "0x11000"]);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stderr, /key check: image built for a bypass/);
  const ok = await bootOf();
  assert.ok(ok.boots, ok.reason);
  assert.ok(ok.line!.startsWith(BOOT_LINE_PREFIX));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("restore-rf --from a backup brings back the TLV and MAC after the RF sector was erased", async () => {
  const dir = await Deno.makeTempDir();
  const state = join(dir, "n.chip");
  const backups = join(dir, "backups");
  const base = ["--port", "virtual:bk7231n", "--state", state, "--backup-dir", backups];
  const tpl = await flash([...base, "--json", "restore-rf", "--template"]);
  assert.equal(tpl.code, 0, tpl.stderr);
  const mac = json(tpl).mac as string;
  assert.match(mac, /^3a:1f:8d:/);
  const erase = await flash([...base, "--json", "erase-region", "--addr", "0x1d0000", "--size", "0x1000"]);
  assert.equal(erase.code, 0, erase.stderr);
  const backup = json(erase).backup as string;
  const gone = json(await flash([...base, "--json", "inspect"]));
  assert.equal(gone.rf, null);
  assert.ok((gone.warnings as string[]).some((w) => w.includes("restore-rf")));
  const restored = await flash([...base, "--json", "restore-rf", "--from", backup]);
  assert.equal(restored.code, 0, restored.stderr);
  assert.equal(json(restored).mac, mac);
  const after = json(await flash([...base, "--json", "inspect"]));
  assert.deepEqual(after.rf as { mac: string; valid: boolean }, {
    ...(after.rf as object),
    mac,
    valid: true,
  });
  // a backup without a valid TLV is refused before anything is written
  const empty = join(dir, "empty.bin");
  await Deno.writeFile(empty, new Uint8Array(0x200000).fill(0xff));
  const refused = await flash([...base, "--yes", "restore-rf", "--from", empty]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /no valid RF\/MAC TLV/);
  await Deno.remove(dir, { recursive: true });
});
