import assert from "node:assert/strict";
import { chipById } from "../core/chips/profiles.ts";
import { recordLink, recordUsbDevice } from "../core/io/record.ts";
import { MemoryTraceSink, parseTrace, TraceFormatError, TraceWriter } from "../core/io/trace.ts";
import { openTraceFile, readTraceFile } from "../core/io/trace_file.ts";
import type { UsbDeviceLike, UsbInResult } from "../core/io/usb.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import type { WireEvent } from "../emulator/wire.ts";

Deno.test("recording link: passes everything through and records tx, rx, baud and modem lines with times", async () => {
  const v = await createVirtualChip({ chip: "bk7231n" });
  const seen: WireEvent[] = [];
  const sink = new MemoryTraceSink();
  const writer = new TraceWriter(sink, { clock: "virtual", createdAt: "1970-01-01T00:00:00.000Z" });
  const link = recordLink(v.link({ onEvent: (e) => seen.push(e) }), writer, { label: "test" });
  await link.setSignals({ dtr: false, rts: true });
  await link.setSignals({ rts: false });
  const { identity } = await openUartTarget(link, { chip: chipById("bk7231n"), baud: 921600 });
  assert.equal(identity.profile.id, "bk7231n");
  const trace = parseTrace(sink.text());
  assert.equal(trace.header.clock, "virtual");
  assert.equal(trace.links.length, 1);
  const [l] = trace.links;
  assert.deepEqual([l.kind, l.name, l.baud, l.modemLines, l.label], [
    "uart",
    "virtual:bk7231n",
    115200,
    true,
    "test",
  ]);
  const cat = (dir: string) =>
    l.events.filter((e) => e.kind === dir).flatMap((e) => "data" in e ? [...e.data] : []);
  const wire = (dir: string) => seen.filter((e) => e.dir === dir).flatMap((e) => [...(e.data ?? [])]);
  assert.deepEqual(cat("tx"), wire("tx"), "every byte written is recorded, in order");
  const rx = cat("rx");
  assert.ok(rx.length > 0 && rx.length <= wire("rx").length);
  const bauds = l.events.filter((e) => e.kind === "baud").map((e) => "baud" in e && e.baud);
  assert.deepEqual(bauds, seen.filter((e) => e.dir === "baud").map((e) => e.baud));
  assert.equal(bauds[bauds.length - 1], 921600);
  assert.deepEqual(
    l.events.filter((e) => e.kind === "signals").map((e) => "rts" in e && [e.dtr, e.rts]),
    [[false, true], [undefined, false]],
  );
  const times = l.events.map((e) => e.t);
  assert.deepEqual(times, [...times].sort((a, b) => a - b), "timestamps never go backwards");
  assert.ok(times[times.length - 1] > 0);
});

Deno.test("recording USB device: transfers written in the order issued, with the IN data", async () => {
  const order: string[] = [];
  let release: (() => void) | null = null;
  const device: UsbDeviceLike = {
    vendorId: 0x1a86,
    productId: 0x5512,
    open: () => Promise.resolve(),
    close: () => Promise.resolve(),
    selectConfiguration: () => Promise.resolve(),
    claimInterface: () => Promise.resolve(),
    releaseInterface: () => Promise.resolve(),
    transferOut: (_ep, data) => {
      order.push(`out ${data[0]}`);
      return Promise.resolve({ bytesWritten: data.length, status: "ok" });
    },
    transferIn: (_ep, _len) =>
      new Promise<UsbInResult>((resolve) => {
        order.push("in");
        release = () => resolve({ status: "ok", data: new DataView(Uint8Array.of(7, 8, 9).buffer) });
      }),
  };
  const sink = new MemoryTraceSink();
  const clock = { now: () => 0, sleep: () => Promise.resolve() };
  const rec = recordUsbDevice(device, new TraceWriter(sink, { clock: "real" }), clock);
  await rec.open();
  const pendingIn = rec.transferIn(2, 32);
  await rec.transferOut(2, Uint8Array.of(0xab, 1));
  assert.equal(sink.lines.length, 3, "the OUT waits behind the IN issued before it");
  release!();
  await pendingIn;
  const events = parseTrace(sink.text()).links[0].events;
  assert.deepEqual(events.map((e) => e.kind), ["usb", "usb-in", "usb-out"]);
  assert.deepEqual(events[1].kind === "usb-in" && [...events[1].data], [7, 8, 9]);
  assert.deepEqual(order, ["in", "out 171"]);
});

Deno.test("trace parser: names the line of a malformed event", () => {
  const ok =
    '{"trace":"bekenlab","version":1,"clock":"real","createdAt":"x"}\n{"open":1,"kind":"uart","name":"p"}\n';
  assert.throws(() => parseTrace(ok + '{"l":1,"t":0,"tx":"0g"}\n'), (e) => {
    assert.ok(e instanceof TraceFormatError);
    assert.match(e.message, /^trace line 3: not a hex string/);
    return true;
  });
  assert.throws(
    () => parseTrace(ok + '{"l":2,"t":0,"tx":"00"}\n'),
    /line 3: event for link 2, which was never opened/,
  );
  assert.throws(
    () => parseTrace('{"trace":"bekenlab","version":9}\n'),
    /trace version 9, this build reads 1/,
  );
  assert.throws(() => parseTrace('{"hello":1}\n'), /not a bekenlab trace/);
});

Deno.test("trace files: plain and gzip round trips", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const name of ["t.jsonl", "t.jsonl.gz"]) {
      const path = `${dir}/${name}`;
      const writer = new TraceWriter(await openTraceFile(path), { clock: "real", run: { tool: "test" } });
      const id = writer.open({ kind: "uart", name: "p", baud: 115200 });
      writer.event(id, { kind: "tx", t: 1.5, data: Uint8Array.of(1, 0xe0, 0xfc, 1, 0) });
      writer.note(2, "power-cycle by command");
      await writer.close();
      const trace = parseTrace(await readTraceFile(path));
      assert.deepEqual(trace.header.run, { tool: "test" });
      assert.equal(trace.notes[0].text, "power-cycle by command");
      const e = trace.links[0].events[0];
      assert.deepEqual(e.kind === "tx" && [e.t, [...e.data]], [1.5, [1, 0xe0, 0xfc, 1, 0]]);
    }
    const raw = await Deno.readFile(`${dir}/t.jsonl.gz`);
    assert.deepEqual([raw[0], raw[1]], [0x1f, 0x8b], "the .gz file is gzip");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flash --record: the CLI's wire goes into the trace, and its link+identify part replays through the core", async () => {
  const { main } = await import("../cli/flash.ts");
  const { ReplayLink } = await import("../core/trace/replay_link.ts");
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/cli.jsonl`;
    const err: string[] = [];
    const io = { stdout: () => {}, stderr: (t: string) => err.push(t), stderrIsTTY: false };
    const argv = ["--port", "virtual:bk7231n", "--baud", "921600", "--record", path, "chip-info", "--json"];
    assert.equal(await main(argv, { io }), 0, err.join(""));
    const trace = parseTrace(await readTraceFile(path));
    assert.deepEqual(trace.header.run, { tool: "flash", argv });
    assert.equal(trace.header.clock, "virtual");
    const replay = new ReplayLink(trace.links[0], { clock: trace.header.clock });
    const { identity } = await openUartTarget(replay, { chip: chipById("bk7231n"), baud: 921600 });
    assert.equal(identity.profile.id, "bk7231n");
    assert.equal(replay.divergence, null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
