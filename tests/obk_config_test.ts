import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../cli/flash.ts";
import { TUYA_N_KEY } from "../core/image/cipher.ts";
import { decodeObkConfig, encodeObkConfig, obkCrc8 } from "../core/image/obk_config.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { syntheticDump } from "./support/dumps.ts";

async function flash(args: string[]) {
  let stdout = "", stderr = "";
  const code = await main(args, {
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stderrIsTTY: false },
    now: () => new Date("2026-12-06T01:00:00Z"),
  });
  return { code, stdout, stderr };
}

Deno.test("OpenBeken config: encode, decode, CRC8, defaults kept or replaced", () => {
  const s = encodeObkConfig({
    set: { "wifi.ssid": "lab", "mqtt.port": "1884" },
    pins: { "6": "Rel;1", "24": "Btn;1" },
  }, {
    suffix: "ABCDEF",
  });
  assert.equal(s.length, 0x1000);
  assert.deepEqual([...s.subarray(0, 3)], [0x43, 0x46, 0x47]);
  assert.ok(s.subarray(3584).every((b) => b === 0xff));
  const c = decodeObkConfig(s)!;
  assert.ok(c.crcValid);
  assert.equal(c.version, 4);
  assert.equal(c.mqttPort, 1884);
  assert.equal(c.text["wifi.ssid"], "lab");
  assert.equal(c.text["name.short"], "obkABCDEF");
  assert.deepEqual(c.pins.map((p) => `${p.pin}:${p.role};${p.channel}`), ["6:Rel;1", "24:Btn;1"]);
  // a second write on top keeps what it does not set
  const s2 = encodeObkConfig({ set: { "wifi.pass": "pw" } }, { base: s, suffix: "000000" });
  const c2 = decodeObkConfig(s2)!;
  assert.equal(c2.text["wifi.ssid"], "lab");
  assert.equal(c2.text["name.short"], "obkABCDEF");
  assert.equal(c2.pins.length, 2);
  // a flipped byte breaks the CRC
  s2[0x20] ^= 1;
  assert.ok(!decodeObkConfig(s2)!.crcValid);
  assert.equal(decodeObkConfig(new Uint8Array(0x1000).fill(0xff)), null);
  assert.throws(
    () => encodeObkConfig({ set: { "wifi.ssid": "x".repeat(64) } }, { suffix: "0" }),
    /at most 63/,
  );
  assert.throws(() => encodeObkConfig({ set: { bogus: "1" } }, { suffix: "0" }), /unknown setting bogus/);
  assert.throws(
    () => encodeObkConfig({ set: {}, pins: { "6": "Relay;1" } }, { suffix: "0" }),
    /unknown OpenBeken role/,
  );
  // the signed CRC8 differs from the unsigned one once the running CRC's top bit is set
  const data = new Uint8Array([0x01, 0x00]);
  assert.notEqual(obkCrc8(data, true), obkCrc8(data, false));
});

for (const [chip, addr] of [["bk7231n", 0x1d1000], ["bk7231t", 0x1e1000]] as const) {
  Deno.test(`obk-config on virtual ${chip} writes one sector at ${addr.toString(16)}; inspect decodes it, password masked`, async () => {
    const dir = await Deno.makeTempDir();
    const state = join(dir, "c.chip");
    const base = ["--port", `virtual:${chip}`, "--state", state, "--backup-dir", join(dir, "b")];
    assert.equal((await flash([...base, "chip-info"])).code, 0);
    const before = (await createVirtualChip({ chip, state })).nor.snapshot().data;
    const tpl = join(dir, "t.json");
    await Deno.writeTextFile(
      tpl,
      JSON.stringify({ pins: { "7": "Rel;1", "15": "WifiLED_n;0", "17": "Btn;1" }, command: "" }),
    );
    const w = await flash([
      ...base,
      "obk-config",
      "--set",
      "wifi.ssid=lab",
      "--set",
      "wifi.pass=secret123",
      "--pins",
      tpl,
    ]);
    assert.equal(w.code, 0, w.stderr);
    assert.ok(!w.stdout.includes("secret123"), "the password is not printed");
    const after = (await createVirtualChip({ chip, state })).nor.snapshot().data;
    for (let s = 0; s < after.length; s += 0x1000) {
      const same = after.subarray(s, s + 0x1000).every((b, i) => b === before[s + i]);
      assert.equal(same, s !== addr, `sector ${s.toString(16)} ${same ? "unchanged" : "changed"}`);
    }
    const r = JSON.parse((await flash([...base, "--json", "inspect"])).stdout);
    assert.equal(r.obkConfig.offset, addr);
    assert.equal(r.obkConfig.crcValid, true);
    assert.equal(r.obkConfig.text["wifi.ssid"], "lab");
    assert.equal(r.obkConfig.text["wifi.pass"], "<masked: 9 chars>");
    assert.deepEqual(r.obkConfig.pins.map((p: { pin: number; role: string }) => `${p.pin}:${p.role}`), [
      "7:Rel",
      "15:WifiLED_n",
      "17:Btn",
    ]);
    const shown = JSON.parse((await flash([...base, "--json", "inspect", "--show-secrets"])).stdout);
    assert.equal(shown.obkConfig.text["wifi.pass"], "secret123");
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("obk-config --from-dump takes the pins from the Tuya configuration of a backup", async () => {
  const dir = await Deno.makeTempDir();
  const dump = join(dir, "backup.bin");
  await Deno.writeFile(dump, syntheticDump(TUYA_N_KEY));
  const state = join(dir, "n.chip");
  const base = ["--port", "virtual:bk7231n", "--state", state, "--backup-dir", join(dir, "b"), "--no-backup"];
  const w = await flash([...base, "--json", "obk-config", "--from-dump", dump, "--name", "Kitchen Plug"]);
  assert.equal(w.code, 0, w.stderr);
  const r = JSON.parse(w.stdout);
  assert.deepEqual(
    r.pins.map((p: { pin: number; role: string; channel: number }) => `${p.pin}:${p.role};${p.channel}`),
    [
      "6:Rel;1",
      "7:Rel_n;2",
      "23:WifiLED_n;0",
      "24:Btn;1",
    ],
  );
  assert.equal(r.set["name.short"], "kitchen_plug");
  const bad = await flash([...base, "obk-config", "--set", "nonsense"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /expected key=value/);
  await Deno.remove(dir, { recursive: true });
});
