/**
 * Replaying recorded wire traces through today's core. Every trace in fixtures/traces/ is a
 * HIL run recorded on the emulator (`deno task traces`) or contributed from a real board;
 * replaying it re-runs the same scenarios, with the trace answering instead of a chip, and
 * fails with a hex diff as soon as the core sends a byte other than the recorded one.
 */

import assert from "node:assert/strict";
import { chipById } from "../core/chips/profiles.ts";
import { MemoryStore } from "../core/flasher/store.ts";
import { TraceDivergenceError } from "../core/trace/replay.ts";
import { MemoryTraceSink, parseTrace, TraceWriter } from "../core/io/trace.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { HardwareBench } from "../hil/hardware_bench.ts";
import { openBench } from "../hil/open.ts";
import { type RecordedRun, ReplayBench } from "../hil/replay_bench.ts";
import { type HilReport, runHil } from "../hil/runner.ts";

const DIR = new URL("../fixtures/traces/", import.meta.url);
const FIXTURES = [...Deno.readDirSync(DIR)]
  .filter((e) => e.isFile && /\.jsonl(\.gz)?$/.test(e.name))
  .map((e) => e.name)
  .sort();

async function replay(file: string): Promise<{ report: HilReport; failure: Error | null }> {
  const opened = await openBench({ target: `replay:${file}`, baud: 921600, linkTimeoutMs: 3000 });
  const report = await runHil(opened.bench, {
    profile: opened.profile,
    only: opened.only,
    destructive: opened.destructive,
    store: new MemoryStore(),
  });
  opened.bench.verify?.();
  return { report, failure: opened.bench.failure ?? null };
}

async function withTemp<T>(text: string, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/trace.jsonl`;
    await Deno.writeTextFile(path, text);
    return await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fixtures/traces holds a trace for every chip profile's UART path and the SPI path", () => {
  assert.ok(FIXTURES.includes("bk7231n-uart.jsonl") && FIXTURES.includes("bk7231n-spi.jsonl"));
  assert.ok(FIXTURES.length >= 10);
});

for (const name of FIXTURES) {
  Deno.test(`replay ${name}: the core sends exactly what was recorded and every scenario passes`, async () => {
    const file = new URL(name, DIR).pathname;
    const { report, failure } = await replay(file);
    assert.equal(
      failure,
      null,
      `${failure?.message}\n(if the core's wire changed on purpose: run \`deno task traces\` and commit the new fixtures)`,
    );
    assert.equal(report.error, null, report.error?.message);
    assert.equal(report.failed, 0, JSON.stringify(report.scenarios.filter((s) => s.status === "failed")));
    const recorded = (parseTrace(await Deno.readTextFile(file)).header.run as unknown as RecordedRun).only!;
    const ran = report.scenarios.filter((s) => s.status === "passed").map((s) => s.id);
    const labels = new Set(parseTrace(await Deno.readTextFile(file)).links.map((l) => l.label));
    assert.deepEqual(ran.sort(), recorded.filter((id) => labels.has(id)).sort());
  });
}

/** The fixture with the byte at `offset` of the first tx event matching `prefix` replaced. */
async function mutated(
  name: string,
  prefix: string,
  offset: number,
): Promise<{ text: string; line: number }> {
  const lines = (await Deno.readTextFile(new URL(name, DIR))).split("\n");
  const line = lines.findIndex((l) => l.includes(`"tx":"${prefix}`));
  assert.ok(line > 0, `no ${prefix} write in ${name}`);
  lines[line] = lines[line].replace(/"tx":"([0-9a-f]+)"/, (_m, hex: string) => {
    const b = parseInt(hex.slice(2 * offset, 2 * offset + 2), 16) ^ 0x01;
    return `"tx":"${hex.slice(0, 2 * offset)}${b.toString(16).padStart(2, "0")}${hex.slice(2 * offset + 2)}"`;
  });
  return { text: lines.join("\n"), line: line + 1 };
}

Deno.test("replay: a byte the core sends differently fails with a readable hex diff naming the command", async () => {
  // FlashGetMID (long frame 0x0e): flip the low bit of its spiCmd byte 0x9f in the recording
  const { text, line } = await mutated("bk7231n-uart.jsonl", "01e0fcfff405000e", 8);
  await withTemp(text, async (path) => {
    const { report, failure } = await replay(path);
    assert.ok(failure instanceof TraceDivergenceError);
    assert.equal(failure.line, line);
    const msg = failure.message.split("\n");
    assert.equal(msg[0], "trace replay diverged: the core sent 0x9f where the recording has 0x9e");
    assert.match(
      msg[1],
      new RegExp(
        `^  at link \\d+ "virtual:bk7231n" \\(detect\\), host-to-device byte \\d+, trace line ${line}, t=`,
      ),
    );
    assert.equal(msg[2], "  recorded: FlashGetMID spiCmd=0x9e");
    assert.equal(msg[3], "  core:     FlashGetMID spiCmd=0x9f");
    assert.equal(msg[4], `  recorded (line ${line})  +0000  01 e0 fc ff f4 05 00 0e [9e] 00 00 00`);
    assert.equal(
      msg[5],
      `  ${"core".padEnd(`recorded (line ${line})`.length)}  +0000  01 e0 fc ff f4 05 00 0e [9f] 00 00 00`,
    );
    assert.equal(report.error?.code, "REPLAY_DIVERGED");
    assert.equal(report.scenarios[0].status, "failed");
    assert.ok(
      report.scenarios.slice(1).every((s) =>
        s.status === "skipped" && s.reason === "not run: the bench failed"
      ),
    );
  });
});

Deno.test("replay: the core stopping before the recording does is a divergence too", async () => {
  const lines = (await Deno.readTextFile(new URL("bk7231u-uart.jsonl", DIR))).trimEnd().split("\n");
  const last = JSON.parse(lines[lines.length - 1]);
  lines.push(JSON.stringify({ l: last.l, t: last.t + 1, tx: "01e0fc0100" }));
  await withTemp(lines.join("\n") + "\n", async (path) => {
    const { failure } = await replay(path);
    assert.ok(failure instanceof TraceDivergenceError);
    assert.match(
      failure.message,
      new RegExp(
        `^trace replay diverged: the core stopped where the recording continues with a write of LinkCheck \\(line ${lines.length}\\)`,
      ),
    );
  });
});

Deno.test("replay: a changed USB OUT on the CH341A path is shown as a packet diff", async () => {
  const lines = (await Deno.readTextFile(new URL("bk7231n-spi.jsonl", DIR))).split("\n");
  const i = lines.findIndex((l) => l.includes('"out":"abb77f20"'));
  assert.ok(i > 0);
  lines[i] = lines[i].replace('"out":"abb77f20"', '"out":"abb67f20"');
  await withTemp(lines.join("\n"), async (path) => {
    const { failure } = await replay(path);
    assert.ok(failure instanceof TraceDivergenceError);
    const msg = failure.message.split("\n");
    assert.equal(
      msg[0],
      "trace replay diverged: the driver sent 0xb7 where the recording has 0xb6 in a USB OUT",
    );
    assert.equal(msg[2], "  recorded: 4 bytes: UIO stream");
    assert.match(msg[4], /^ {2}recorded \(line \d+\) {2}\+0000 {2}ab \[b6\] 7f 20$/);
  });
});

Deno.test("replay: a run recorded on a hardware-style bench (backup first, restore last) replays", async () => {
  const profile = chipById("bk7231t")!;
  const sink = new MemoryTraceSink();
  const run: RecordedRun = {
    tool: "hil",
    target: "virtual-as-hardware",
    chip: profile.id,
    path: "uart",
    bench: "hardware",
    power: "rts",
    only: ["detect", "power-cycle", "erase-region"],
    destructive: true,
    baud: 921600,
    linkTimeoutMs: 20_000,
  };
  const writer = new TraceWriter(sink, { clock: "virtual", run: { ...run } });
  const v = await createVirtualChip({ chip: profile.id });
  const bench = new HardwareBench({ link: v.link() }, {
    target: run.target,
    profile,
    baud: run.baud,
    linkTimeoutMs: run.linkTimeoutMs,
    record: writer,
  });
  const recorded = await runHil(bench, {
    profile,
    only: run.only,
    destructive: true,
    store: new MemoryStore(),
  });
  await writer.close();
  assert.equal(recorded.failed, 0);
  assert.ok(recorded.restore?.verified);

  const replayed = new ReplayBench(parseTrace(sink.text()), run, profile, "memory");
  const again = await runHil(replayed, {
    profile,
    only: run.only,
    destructive: true,
    store: new MemoryStore(),
  });
  replayed.verify();
  assert.equal(replayed.failure, null, replayed.failure?.message);
  assert.equal(again.failed, 0);
  assert.ok(again.restore?.verified);
  assert.deepEqual(
    again.scenarios.map((s) => s.ms),
    recorded.scenarios.map((s) => s.ms),
    "same modelled times",
  );
});
