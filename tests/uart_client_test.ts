import assert from "node:assert/strict";
import { TIMING_RANGES } from "../core/timing.ts";
import { VirtualClock } from "../core/clock.ts";
import { ChipStatusError, FlashError } from "../core/errors.ts";
import { type ByteLink, LinkClosedError, type ModemSignals } from "../core/io/link.ts";
import { replyTimeoutMs, UartClient, type WireEvent } from "../core/uart/client.ts";
import { concat, encodeReply, encodeRequest, frameReply, type RequestFrame } from "../core/uart/codec.ts";
import { RequestParser } from "../core/uart/parser.ts";
import { switchBaud } from "../core/uart/baud_switch.ts";
import { connect } from "../core/uart/connect.ts";
import type { SessionEvent } from "../core/uart/events.ts";
import { COMMANDS } from "../core/uart/table.ts";

/** What the scripted chip sends back for one request: chunks with a delay and the baud they use. */
interface Answer {
  data: Uint8Array;
  delayMs?: number;
  /** Baud the chunk is sent at (default: the chip's current baud). */
  baud?: number;
}

type Script = (req: RequestFrame, chip: ScriptedChip, now: number) => Answer[];

/** The far end of {@link FakeLink}: parses requests and answers from a script. */
class ScriptedChip {
  baud = 115200;
  readonly requests: RequestFrame[] = [];
  readonly raw: Uint8Array[] = [];
  #parser = new RequestParser();
  constructor(public script: Script) {}
  receive(data: Uint8Array, now: number): { at: number; baud: number; data: Uint8Array }[] {
    this.raw.push(data);
    this.#parser.push(data);
    const out: { at: number; baud: number; data: Uint8Array }[] = [];
    for (let req = this.#parser.next(); req; req = this.#parser.next()) {
      this.requests.push(req);
      for (const a of this.script(req, this, now)) {
        out.push({ at: now + (a.delayMs ?? 1), baud: a.baud ?? this.baud, data: a.data });
      }
    }
    return out;
  }
}

/**
 * An in-memory ByteLink on a virtual clock. Bytes are delivered whole at their scheduled time;
 * bytes sent or received at a baud the other side does not use arrive as garbage.
 */
class FakeLink implements ByteLink {
  readonly name = "fake0";
  readonly clock = new VirtualClock();
  baud = 115200;
  readonly signals: ModemSignals[] = [];
  closed = false;
  #rx: { at: number; baud: number; data: Uint8Array }[] = [];
  constructor(public chip: ScriptedChip, public hasModemLines = false) {}
  write(data: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new LinkClosedError(this.name));
    const heard = this.chip.baud === this.baud ? data : garble(data);
    this.#rx.push(...this.chip.receive(heard, this.clock.now()));
    this.#rx.sort((a, b) => a.at - b.at);
    return Promise.resolve();
  }
  read(max: number, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new LinkClosedError(this.name));
    const deadline = this.clock.now() + timeoutMs;
    const first = this.#rx[0];
    if (!first || first.at > deadline) {
      this.clock.advanceTo(deadline);
      return Promise.resolve(new Uint8Array(0));
    }
    this.clock.advanceTo(first.at);
    const parts: Uint8Array[] = [];
    let n = 0;
    while (this.#rx.length && this.#rx[0].at <= this.clock.now() && n < max) {
      const c = this.#rx.shift()!;
      const bytes = c.baud === this.baud ? c.data : garble(c.data);
      parts.push(bytes);
      n += bytes.length;
    }
    return Promise.resolve(concat(parts));
  }
  drain(): Promise<void> {
    return Promise.resolve();
  }
  flushInput(): Promise<void> {
    this.#rx = this.#rx.filter((c) => c.at > this.clock.now());
    return Promise.resolve();
  }
  setBaud(baud: number): Promise<void> {
    this.baud = baud;
    return Promise.resolve();
  }
  setSignals(signals: ModemSignals): Promise<void> {
    this.signals.push({ ...signals });
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

function garble(data: Uint8Array): Uint8Array {
  return data.map(() => 0xf0);
}

const LINK_REPLY = encodeReply(COMMANDS.LinkCheck, { ok: 0 });

/** A chip that answers LinkCheck, ReadReg, WriteReg, SetBaudRate and CheckCRC like a FULL loader. */
function basicScript(req: RequestFrame, chip: ScriptedChip): Answer[] {
  const v = new DataView(req.payload.buffer, req.payload.byteOffset, req.payload.byteLength);
  if (req.kind === "short" && req.code === 0x00) return [{ data: LINK_REPLY }];
  if (req.kind === "short" && req.code === 0x03) {
    return [{ data: encodeReply(COMMANDS.ReadReg, { addr: v.getUint32(0, true), value: 0x7231c }) }];
  }
  if (req.kind === "short" && req.code === 0x01) {
    return [{
      data: encodeReply(COMMANDS.WriteReg, { addr: v.getUint32(0, true), value: v.getUint32(4, true) }),
    }];
  }
  if (req.kind === "short" && req.code === 0x0f) {
    const baud = v.getUint32(0, true);
    const delay = req.payload[4];
    chip.baud = baud;
    return [{ data: encodeReply(COMMANDS.SetBaudRate, { baud, delay }), delayMs: delay, baud }];
  }
  if (req.kind === "short" && req.code === 0x10) {
    return [{ data: encodeReply(COMMANDS.CheckCRC, { crc: 0x12345678 }) }];
  }
  return [];
}

function setup(script: Script = basicScript, modem = false) {
  const chip = new ScriptedChip(script);
  const link = new FakeLink(chip, modem);
  const wire: WireEvent[] = [];
  const client = new UartClient(link, { onWire: (e) => wire.push(e) });
  return { chip, link, client, wire };
}

async function rejectsWith(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<FlashError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FlashError, `expected FlashError, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return e;
  }
  assert.fail(`expected ${code}`);
}

Deno.test("client: a command round trip decodes the reply and counts wire bytes", async () => {
  const { client, wire } = setup();
  const r = await client.command(COMMANDS.ReadReg, { addr: 0x800000 });
  assert.deepEqual(r, { addr: 0x800000, value: 0x7231c });
  assert.deepEqual(client.stats, { bytesOut: 9, bytesIn: 15, roundTrips: 1 });
  assert.deepEqual(wire.map((w) => [w.dir, w.data.length]), [["out", 9], ["in", 15]]);
  assert.deepEqual(wire[0].data, Uint8Array.of(0x01, 0xe0, 0xfc, 0x05, 0x03, 0x00, 0x00, 0x80, 0x00));
});

Deno.test("client: stale LinkCheck reply (also RSP 0x01), garbage and other replies are skipped", async () => {
  const { client } = setup((req, chip) => {
    if (req.code !== 0x01) return basicScript(req, chip);
    return [
      { data: LINK_REPLY },
      { data: Uint8Array.of(0x00, 0x04, 0x55, 0x0e) },
      { data: encodeReply(COMMANDS.CheckCRC, { crc: 1 }) },
      { data: encodeReply(COMMANDS.WriteReg, { addr: 0x1234, value: 9 }) }, // echo of another request
      ...basicScript(req, chip).map((a) => ({ ...a, delayMs: 3 })),
    ];
  });
  const r = await client.command(COMMANDS.WriteReg, { addr: 0x800074, value: 0x301 });
  assert.deepEqual(r, { addr: 0x800074, value: 0x301 });
  assert.equal(client.skippedFrames, 3);
});

Deno.test("client: bytes received before the request are stale and flushed", async () => {
  const { client, link } = setup();
  // a late CheckCRC reply from an earlier request, sitting in the input buffer
  link.chip.script = (req, chip) =>
    req.code === 0x03 ? [{ data: encodeReply(COMMANDS.CheckCRC, { crc: 0xdead }) }] : basicScript(req, chip);
  await client.tryCommand(COMMANDS.ReadReg, { addr: 0 }, { timeoutMs: 0 });
  await link.clock.sleep(5);
  link.chip.script = basicScript;
  const r = await client.command(COMMANDS.CheckCRC, { start: 0, end: 256 });
  assert.equal(r.crc, 0x12345678);
});

Deno.test("client: a long reply with a non-zero status is a ChipStatusError", async () => {
  const { client } = setup(() => [{ data: frameReply("long", 0x09, Uint8Array.of(0, 0, 0, 0, 0), 6) }]);
  const e = await rejectsWith(
    client.command(COMMANDS.FlashRead4K, { addr: 0 }),
    "CHIP_STATUS",
    /FlashRead4K/,
  );
  assert.ok(e instanceof ChipStatusError);
  assert.equal(e.status, 6);
  assert.match(e.message, /parameter error/);
});

Deno.test("client: a one-byte 07 reply where the layout needs more is 'unknown command'", async () => {
  const { client } = setup((req) => [{ data: frameReply("short", req.code, Uint8Array.of(0x07)) }]);
  await rejectsWith(
    client.command(COMMANDS.ReadReg, { addr: 0x800000 }),
    "UNSUPPORTED",
    /ReadReg.*unknown command/,
  );
  await rejectsWith(client.command(COMMANDS.ReadBootVersion, {}), "UNSUPPORTED", /ReadBootVersion/);
});

Deno.test("client: LinkCheck's own one-byte payload is not mistaken for 'unknown command'", async () => {
  const { client } = setup();
  assert.deepEqual(await client.command(COMMANDS.LinkCheck, {}), { ok: 0 });
});

Deno.test("client: no reply is a TIMEOUT naming the command and the port", async () => {
  const { client } = setup(() => []);
  const e = await rejectsWith(client.command(COMMANDS.CheckCRC, { start: 0, end: 0x1000 }), "TIMEOUT");
  assert.match(e.message, /CheckCRC/);
  assert.match(e.message, /fake0/);
  assert.ok(e.remedy.length > 0);
});

Deno.test("client: a reply arriving after its timeout does not count", async () => {
  const { client } = setup((req, chip) => basicScript(req, chip).map((a) => ({ ...a, delayMs: 50 })));
  await rejectsWith(client.command(COMMANDS.ReadReg, { addr: 0 }, { timeoutMs: 20 }), "TIMEOUT");
  assert.deepEqual(await client.command(COMMANDS.ReadReg, { addr: 4 }, { timeoutMs: 100 }), {
    addr: 4,
    value: 0x7231c,
  });
});

Deno.test("client: commands the personality lacks are refused before anything is written", async () => {
  const { client, chip } = setup();
  client.personality = "BASIC_TUYA";
  await rejectsWith(
    client.command(COMMANDS.ReadReg, { addr: 0x800000 }),
    "UNSUPPORTED",
    /BASIC_TUYA.*ReadReg/,
  );
  assert.equal(chip.raw.length, 0);
  assert.equal(client.stats.bytesOut, 0);
});

Deno.test("client: a vanished device is DISCONNECTED", async () => {
  const { client, link } = setup();
  link.closed = true;
  await rejectsWith(client.command(COMMANDS.LinkCheck, {}), "DISCONNECTED", /fake0/);
});

Deno.test("client: reply timeouts scale with payload and wire time", () => {
  const crc = (len: number, baud = 921600) => replyTimeoutMs(COMMANDS.CheckCRC, { start: 0, end: len }, baud);
  assert.ok(crc(0x1000) >= 1000 && crc(0x1000) < 1100);
  // the slow end of the calibrated CRC range, with a 1.5 × margin
  assert.ok(crc(0x200000) >= (0x200000 / TIMING_RANGES.crcBytesPerSec.low) * 1.5 * 1000);
  assert.ok(crc(0x400000) > crc(0x200000));
  const read = (baud: number) => replyTimeoutMs(COMMANDS.FlashRead4K, { addr: 0 }, baud);
  assert.ok(read(921600) >= 1000);
  assert.ok(read(115200) >= 1000 + (4111 * 10 * 1000) / 115200);
  const write = replyTimeoutMs(COMMANDS.FlashWrite4K, { addr: 0, data: new Uint8Array(4096) }, 115200);
  assert.ok(write >= 1000 + (4108 * 10 * 1000) / 115200);
  const erase64 = replyTimeoutMs(COMMANDS.FlashErase, { sizeCmd: 0xd8, addr: 0 }, 921600);
  const erase4 = replyTimeoutMs(COMMANDS.FlashErase, { sizeCmd: 0x20, addr: 0 }, 921600);
  assert.ok(erase4 >= 1000 && erase64 > erase4);
});

Deno.test("client: send() writes replyless commands; drain() swallows leftovers", async () => {
  const { client, chip, link } = setup((req) =>
    req.code === 0x0e ? [{ data: LINK_REPLY }, { data: LINK_REPLY, delayMs: 1 }] : []
  );
  await client.send(COMMANDS.Reboot, { magic: 0xa5 });
  assert.deepEqual(chip.raw[0], Uint8Array.of(0x01, 0xe0, 0xfc, 0x02, 0x0e, 0xa5));
  assert.equal(await client.drain(), 16);
  assert.equal(await link.read(64, 10).then((b) => b.length), 0);
});

// --- connect -------------------------------------------------------------------------------

/** A chip that ignores everything until `readyAt` (ms), or until a trigger opens its window. */
function lateChip(readyAt: number, trigger?: "text" | "rts"): { script: Script; state: { open: boolean } } {
  const state = { open: trigger === undefined };
  return {
    state,
    script: (req, chip, now) => (state.open && now >= readyAt ? basicScript(req, chip) : []),
  };
}

Deno.test("connect: link-check loop succeeds once the chip answers, then drains", async () => {
  const { script } = lateChip(137);
  const { link } = setup(script);
  const events: SessionEvent[] = [];
  const client = await connect(link, { onEvent: (e) => events.push(e), resetStrategies: [] });
  const linked = events.find((e) => e.type === "linked");
  assert.ok(linked && linked.type === "linked" && linked.attempts > 10);
  assert.equal(client.link, link);
  // the drain left nothing for the next command
  assert.deepEqual(await client.command(COMMANDS.ReadReg, { addr: 0 }), { addr: 0, value: 0x7231c });
  assert.equal(client.skippedFrames, 0);
});

Deno.test("connect: a silent chip fails with NO_LINK, one cause and one remedy", async () => {
  const { link } = setup(() => []);
  const events: SessionEvent[] = [];
  const e = await rejectsWith(connect(link, { onEvent: (ev) => events.push(ev) }), "NO_LINK");
  assert.equal(e.message, "no reply to link check on fake0 after 20 s");
  assert.equal(
    e.remedy,
    "reset the chip (CEN to GND) or power-cycle it while this runs; check TX→RX, RX→TX, GND and 3.3 V",
  );
  assert.ok(events.some((ev) => ev.type === "hint" && /CEN to GND for 0.25 s/.test(ev.message)));
  assert.ok(events.some((ev) => ev.type === "reset" && ev.strategy === "reboot-text"));
  // no modem lines on this link: no pulse was attempted
  assert.ok(!events.some((ev) => ev.type === "reset" && ev.strategy === "modem-pulse"));
  assert.equal(link.signals.length, 0);
  await rejectsWith(connect(link, { linkTimeoutMs: 300, resetStrategies: [] }), "NO_LINK", /after 0\.3 s/);
});

Deno.test("connect: the DTR/RTS pulse brings a chip with modem lines into its loader", async () => {
  const state = { open: false, at: 0 };
  const chip = new ScriptedChip((req, c, now) => (state.open && now >= state.at ? basicScript(req, c) : []));
  const link = new FakeLink(chip, true);
  const original = link.setSignals.bind(link);
  link.setSignals = (s: ModemSignals) => {
    if (s.rts === false && link.signals.at(-1)?.rts) {
      Object.assign(state, { open: true, at: link.clock.now() + 20 });
    }
    return original(s);
  };
  await connect(link, { resetStrategies: [{ kind: "modem-pulse", startMs: 50, everyMs: 4000 }] });
  assert.deepEqual(link.signals, [{ dtr: true, rts: true }, { dtr: false, rts: true }, {
    dtr: false,
    rts: false,
  }]);
});

Deno.test("connect: OpenBeken firmware is sent `reboot` on the given schedule", async () => {
  const state = { open: false };
  const chip = new ScriptedChip((req, c) => (state.open ? basicScript(req, c) : []));
  const link = new FakeLink(chip);
  const write = link.write.bind(link);
  link.write = (data: Uint8Array) => {
    if (new TextDecoder().decode(data) === "reboot\r\n") state.open = true;
    return write(data);
  };
  const events: SessionEvent[] = [];
  await connect(link, {
    resetStrategies: [{ kind: "reboot-text", startMs: 0, everyTries: 100 }],
    onEvent: (e) => events.push(e),
  });
  assert.ok(events.some((e) => e.type === "linked"));
});

// --- baud switching ------------------------------------------------------------------------

Deno.test("switchBaud: handshake moves host and chip to the new rate", async () => {
  const { client, link, chip } = setup();
  const events: SessionEvent[] = [];
  assert.equal(await switchBaud(client, 921600, { onEvent: (e) => events.push(e) }), 921600);
  assert.equal(link.baud, 921600);
  assert.equal(chip.baud, 921600);
  const req = chip.requests.find((r) => r.code === 0x0f)!;
  assert.deepEqual(req.payload, Uint8Array.of(0x00, 0x10, 0x0e, 0x00, 20));
  assert.deepEqual(events.map((e) => e.type), ["baud"]);
  assert.deepEqual(await client.command(COMMANDS.ReadReg, { addr: 8 }), { addr: 8, value: 0x7231c });
});

Deno.test("switchBaud: 115200 is not sent at all", async () => {
  const { client, chip } = setup();
  assert.equal(await switchBaud(client, 115200), 115200);
  assert.equal(chip.requests.length, 0);
});

Deno.test("switchBaud: a stale LinkCheck reply before the echo is skipped", async () => {
  const { client, link } = setup((req, chip) => {
    const out = basicScript(req, chip);
    return req.code === 0x0f ? [{ data: LINK_REPLY, delayMs: 15, baud: chip.baud }, ...out] : out;
  });
  assert.equal(await switchBaud(client, 1500000), 1500000);
  assert.equal(link.baud, 1500000);
});

Deno.test("switchBaud: a lost echo is retried after re-linking", async () => {
  let drops = 1;
  const { client, link } = setup((req, chip) => {
    const out = basicScript(req, chip);
    // the chip switches, but its first echo at the new rate is lost on the wire
    if (req.code === 0x0f && chip.baud === 921600 && drops-- > 0) return [];
    return out;
  });
  const events: SessionEvent[] = [];
  assert.equal(await switchBaud(client, 921600, { onEvent: (e) => events.push(e) }), 921600);
  assert.equal(link.baud, 921600);
  assert.deepEqual(events.map((e) => e.type), ["baud-retry", "baud"]);
});

Deno.test("switchBaud: an adapter that cannot do the rate falls back to 115200 and says so", async () => {
  // the chip never hears SetBaudRate correctly: it stays at 115200
  const { client, link, chip } = setup((req, c) => (req.code === 0x0f ? [] : basicScript(req, c)));
  const events: SessionEvent[] = [];
  assert.equal(await switchBaud(client, 2000000, { onEvent: (e) => events.push(e) }), 115200);
  assert.equal(link.baud, 115200);
  assert.equal(chip.baud, 115200);
  assert.deepEqual(events.map((e) => e.type), ["baud-retry", "baud-retry", "baud-retry", "baud-fallback"]);
  const fallback = events.at(-1)!;
  assert.match(fallback.message, /2000000.*115200/);
  assert.deepEqual(await client.command(COMMANDS.ReadReg, { addr: 0 }), { addr: 0, value: 0x7231c });
});

Deno.test("switchBaud: a chip stuck at the new rate is brought back before the fallback", async () => {
  // the chip switches every time but its echo never gets through
  const { client, link, chip } = setup((req, c) => {
    if (req.code !== 0x0f) return basicScript(req, c);
    const baud = new DataView(req.payload.buffer, req.payload.byteOffset).getUint32(0, true);
    c.baud = baud;
    return baud === 115200
      ? [{ data: encodeReply(COMMANDS.SetBaudRate, { baud, delay: req.payload[4] }), baud }]
      : [];
  });
  const events: SessionEvent[] = [];
  assert.equal(await switchBaud(client, 921600, { onEvent: (e) => events.push(e), retries: 2 }), 115200);
  assert.equal(link.baud, 115200);
  assert.equal(chip.baud, 115200);
  assert.equal(events.at(-1)?.type, "baud-fallback");
  assert.deepEqual(await client.command(COMMANDS.LinkCheck, {}), { ok: 0 });
});

Deno.test("encodeRequest and the scripted chip agree on frames", () => {
  const f = encodeRequest(COMMANDS.LinkCheck, {});
  const p = new RequestParser();
  p.push(f);
  assert.deepEqual(p.next(), { kind: "short", code: 0, payload: new Uint8Array(0) });
});

Deno.test("switchBaud: a rate the adapter refuses is never sent to the chip", async () => {
  const { client, link, chip } = setup();
  link.setBaud = (baud: number) => {
    if (baud > 1_000_000) return Promise.reject(new Error("EINVAL"));
    link.baud = baud;
    return Promise.resolve();
  };
  const events: SessionEvent[] = [];
  assert.equal(await switchBaud(client, 3000000, { onEvent: (e) => events.push(e) }), 115200);
  assert.equal(link.baud, 115200);
  assert.equal(chip.requests.length, 0);
  assert.deepEqual(events.map((e) => e.type), ["baud-fallback"]);
  assert.match(events[0].message, /cannot do 3000000 baud/);
});
