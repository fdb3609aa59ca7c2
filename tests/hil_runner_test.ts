import assert from "node:assert/strict";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { chipById } from "../core/chips/profiles.ts";
import { MemoryStore } from "../core/flasher/store.ts";
import { writeFlash } from "../core/flasher/write.ts";
import { RequestParser } from "../core/uart/parser.ts";
import { crc32 } from "../core/crc.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { Pty } from "../emulator/pty.ts";
import { main } from "../cli/hil.ts";
import type { CliIO } from "../cli/output.ts";
import { HardwareBench } from "../hil/hardware_bench.ts";
import { formatTable, toJunit } from "../hil/report.ts";
import { type HilReport, runHil } from "../hil/runner.ts";
import type { Scenario } from "../hil/scenario.ts";
import { SCENARIOS } from "../hil/scenarios/mod.ts";
import { appImage } from "../hil/images.ts";

const linux = Deno.build.os === "linux";

function captureIO(): CliIO & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => out.push(t), stderr: (t) => err.push(t), stderrIsTTY: false };
}

Deno.test("hil --target virtual:bk7231n --json: every applicable scenario passes, one JSON entry each", async () => {
  const io = captureIO();
  const code = await main(["--target", "virtual:bk7231n", "--chip", "bk7231n", "--json"], { io });
  const report = JSON.parse(io.out.join(""));
  assert.equal(code, 0, io.err.join(""));
  assert.equal(report.target, "virtual:bk7231n");
  assert.equal(report.chip, "bk7231n");
  assert.equal(report.failed, 0);
  assert.equal(report.passed + report.skipped, SCENARIOS.length);
  assert.deepEqual(report.scenarios.map((s: { id: string }) => s.id), SCENARIOS.map((s) => s.id));
  const skipped = report.scenarios.filter((s: { status: string }) => s.status === "skipped");
  assert.deepEqual(skipped.map((s: { id: string }) => s.id), ["spi-recovery", "bk7231m-flow"]);
  for (const s of report.scenarios.filter((s: { status: string }) => s.status === "passed")) {
    assert.ok(s.ms > 0, `${s.id} has a modelled time`);
  }
});

Deno.test("hil: the console table lists scenario, result and modelled time", async () => {
  const io = captureIO();
  const code = await main(["--target", "ch341a:virtual:bk7231t", "--only", "detect,read-key"], { io });
  const text = io.out.join("");
  assert.equal(code, 0, io.err.join(""));
  assert.match(text, /^scenario\s+result\s+time \(modelled\)\s+details$/m);
  assert.match(text, /^detect\s+pass\s+\d+ ms\s+flash 1C 70 15, 2 MiB/m);
  assert.match(text, /^read-key\s+skip\s+—\s+needs the UART path$/m);
  assert.match(text, /2 scenarios: 1 passed, 0 failed, 1 skipped/);
});

Deno.test("hil --junit: the XML is well-formed and carries every scenario", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/hil.xml`;
    const io = captureIO();
    const code = await main(
      ["--target", "virtual:bk7238", "--only", "detect,key-guard,spi-recovery", "--junit", file],
      { io },
    );
    assert.equal(code, 0, io.err.join(""));
    const xml = await Deno.readTextFile(file);
    assert.equal(XMLValidator.validate(xml), true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(xml);
    const suite = doc.testsuites.testsuite;
    assert.equal(suite["@_tests"], "3");
    assert.equal(suite["@_skipped"], "2");
    const cases = suite.testcase as { "@_name": string; skipped?: unknown }[];
    assert.deepEqual(cases.map((c) => c["@_name"]), ["detect", "key-guard", "spi-recovery"]);
    assert.ok(cases[1].skipped !== undefined && cases[2].skipped !== undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("JUnit XML stays well-formed with markup and control characters in failures", () => {
  const nasty = `CRC <0x12> & "quoted" 'text'\u0001 ]]> end`;
  const report: HilReport = {
    target: "/dev/ttyUSB0",
    chip: "bk7231n",
    path: "uart",
    bench: "hardware",
    timeKind: "real",
    passed: 0,
    failed: 1,
    skipped: 0,
    totalMs: 12,
    scenarios: [{
      id: "write-verify",
      title: "t",
      status: "failed",
      reason: nasty,
      remedy: "<check> & retry",
      ms: 12,
      destructive: true,
      notes: ["a < b"],
    }],
    backup: null,
    restore: null,
    error: { code: "NO_LINK", message: "x & y", remedy: "<r>" },
  };
  const xml = toJunit(report, new Date(0));
  assert.equal(XMLValidator.validate(xml), true);
  const doc = new XMLParser({ ignoreAttributes: false, processEntities: true }).parse(xml);
  const failure = doc.testsuites.testsuite.testcase.failure;
  assert.equal(failure["@_message"], nasty.replace("\u0001", ""));
  assert.match(formatTable(report), /write-verify\s+FAIL/);
});

Deno.test("hil: an unknown scenario or a chip that contradicts the virtual target is a usage error", async () => {
  const io = captureIO();
  assert.equal(await main(["--target", "virtual:bk7231n", "--only", "detect,fly"], { io }), 2);
  assert.match(io.err.join(""), /^error: unknown scenario fly$/m);
  const io2 = captureIO();
  assert.equal(await main(["--target", "virtual:bk7231n", "--chip", "bk7231t"], { io: io2 }), 2);
  assert.match(io2.err.join(""), /virtual:bk7231n is a bk7231n but --chip says bk7231t/);
});

Deno.test({
  name: "hil against something that is not a serial port fails at once, in two lines",
  ignore: !linux,
  async fn() {
    const io = captureIO();
    const code = await main(["--target", "/dev/null", "--chip", "bk7231n", "--json"], { io });
    assert.equal(code, 5);
    const lines = io.err.join("").trimEnd().split("\n");
    assert.equal(lines.length, 2);
    assert.match(lines[0], /^error: .*\/dev\/null/);
    assert.match(lines[1], /^remedy: /);
    assert.equal(JSON.parse(io.out.join("")).code, "PORT");
  },
});

Deno.test({
  name: "hil against a tty with nothing on it: fails fast with cause and remedy, only link checks sent",
  ignore: !linux,
  async fn() {
    const pty = Pty.open();
    try {
      const io = captureIO();
      const code = await main(
        ["--target", pty.path, "--chip", "bk7231n", "--link-timeout", "300ms", "--destructive"],
        { io },
      );
      const err = io.err.join("");
      assert.equal(code, 6, err);
      assert.match(err, new RegExp(`^error: no reply to link check on ${pty.path} after 0\\.3 s$`, "m"));
      assert.match(err, /^remedy: reset the chip/m);
      assert.match(io.out.join(""), /15 scenarios: 0 passed, 0 failed, 15 skipped/);
      const sent = pty.read(1 << 16);
      const parser = new RequestParser();
      parser.push(sent);
      let frames = 0;
      for (let f = parser.next(); f; f = parser.next()) {
        assert.deepEqual([f.kind, f.code], ["short", 0x00], "only LinkCheck frames were sent");
        frames++;
      }
      assert.ok(frames > 0, "no link check reached the port");
      const reboots = new TextDecoder("latin1").decode(sent).split("reboot\r\n").length - 1;
      assert.equal(
        sent.length,
        frames * 5 + reboots * 8,
        "bytes other than link checks and `reboot` were sent",
      );
    } finally {
      await pty.close();
    }
  },
});

/** A virtual chip on a "real" bench: one chip for the run, backup first, restore last. */
async function hardwareOnVirtual(chip: string) {
  const v = await createVirtualChip({ chip });
  const profile = chipById(chip)!;
  const bench = new HardwareBench({ link: v.link() }, {
    target: "virtual-as-hardware",
    profile,
    baud: 921600,
    linkTimeoutMs: 20_000,
  });
  return { v, bench, profile };
}

Deno.test("hardware bench: destructive scenarios need --destructive; nothing is backed up or changed without it", async () => {
  const { v, bench, profile } = await hardwareOnVirtual("bk7231n");
  const before = crc32(v.nor.read(0, v.nor.size));
  const report = await runHil(bench, { profile, store: new MemoryStore() });
  assert.equal(report.error, null);
  assert.equal(report.backup, null);
  for (const r of report.scenarios) {
    const s = SCENARIOS.find((x) => x.id === r.id)!;
    // a chip condition that does not hold is reported before the emulator-only need
    const chipReason = s.needs.chip?.(profile, "uart") ?? null;
    if (s.needs.virtualOnly) {
      assert.equal(r.reason, chipReason ?? "needs a state only the emulator can set up");
    } else if (s.needs.path === "spi") assert.equal(r.reason, "needs the SPI path");
    else if (s.needs.destructive) assert.match(r.reason ?? "", /^destructive: pass --destructive/);
    else assert.equal(r.status, "passed", `${r.id}: ${r.reason}`);
  }
  assert.equal(crc32(v.nor.read(0, v.nor.size)), before);
});

Deno.test("hardware bench with --destructive: backup first, every scenario, flash restored and verified", async () => {
  const { v, bench, profile } = await hardwareOnVirtual("bk7231t");
  const before = v.nor.read(0, v.nor.size);
  const store = new MemoryStore();
  const report = await runHil(bench, { profile, destructive: true, store });
  assert.equal(report.error, null);
  assert.equal(report.failed, 0, JSON.stringify(report.scenarios.filter((s) => s.status === "failed")));
  assert.ok(report.backup && store.entries.has(report.backup.location));
  assert.equal(report.backup.crc32, crc32(before).toString(16).padStart(8, "0"));
  assert.ok(report.restore?.ok && report.restore.verified && report.restore.rewritten > 0);
  assert.equal(crc32(v.nor.read(0, v.nor.size)), crc32(before));
});

Deno.test("hardware bench: a scenario that fails after scribbling on the flash still gets the flash restored", async () => {
  const { v, bench, profile } = await hardwareOnVirtual("bk7231n");
  const before = crc32(v.nor.read(0, v.nor.size));
  const vandal: Scenario = {
    id: "vandal",
    title: "writes garbage, then fails",
    needs: { path: "uart", destructive: true },
    async run(ctx) {
      const c = await ctx.connect();
      await writeFlash(c.flasher, appImage(profile, 9), {
        addr: profile.layout.app.start,
        noBackup: true,
        identity: c.identity,
        createdAt: new Date(0),
      });
      throw new Error("scenario broke after writing");
    },
  };
  const report = await runHil(bench, {
    profile,
    destructive: true,
    store: new MemoryStore(),
    suite: [vandal],
  });
  assert.equal(report.scenarios[0].status, "failed");
  assert.equal(report.scenarios[0].reason, "scenario broke after writing");
  assert.ok(report.restore?.ok && report.restore.verified, report.restore?.message);
  assert.equal(report.restore.rewritten, 32);
  assert.equal(crc32(v.nor.read(0, v.nor.size)), before);
});
