import assert from "node:assert/strict";
import {
  baudBytes,
  COM_PORT,
  comPortCommand,
  escapeData,
  negotiation,
  OPTION,
  OptionTable,
  readBaud,
  subnegotiation,
  TELNET,
  TelnetDecoder,
  type TelnetEvent,
} from "../core/io/telnet.ts";

const { IAC, WILL, WONT, DO, DONT, SB, SE } = TELNET;

/** Decode `bytes` cut into pieces at `cuts`, merging adjacent data events. */
function decode(bytes: Uint8Array, cuts: number[], binary = true): TelnetEvent[] {
  const d = new TelnetDecoder(() => binary);
  const out: TelnetEvent[] = [];
  let from = 0;
  for (const at of [...cuts, bytes.length]) {
    for (const ev of d.push(bytes.subarray(from, at))) {
      const last = out.at(-1);
      if (ev.type === "data" && last?.type === "data") {
        out[out.length - 1] = { type: "data", data: Uint8Array.of(...last.data, ...ev.data) };
      } else out.push(ev);
    }
    from = at;
  }
  return out;
}

Deno.test("telnet: data with 0xFF survives escaping and decoding, cut anywhere", () => {
  const data = Uint8Array.of(0x01, 0xff, 0xff, 0x00, 0x0d, 0x0a, 0xff, 0xfe, 0xf0);
  const wire = escapeData(data);
  assert.deepEqual(wire, Uint8Array.of(0x01, IAC, IAC, IAC, IAC, 0x00, 0x0d, 0x0a, IAC, IAC, 0xfe, 0xf0));
  for (let cut = 0; cut <= wire.length; cut++) {
    assert.deepEqual(decode(wire, [cut]), [{ type: "data", data }], `cut at ${cut}`);
  }
  assert.equal(escapeData(Uint8Array.of(1, 2, 3)).length, 3, "nothing to escape, nothing added");
});

Deno.test("telnet: commands and subnegotiations are split from the data around them", () => {
  const sub = comPortCommand(COM_PORT.SET_BAUDRATE + 100, baudBytes(0x00ff_ff00));
  const wire = Uint8Array.of(
    0x41,
    ...negotiation(WILL, OPTION.COM_PORT),
    0x42,
    ...sub,
    IAC,
    TELNET.NOP,
    0x43,
  );
  const expected: TelnetEvent[] = [
    { type: "data", data: Uint8Array.of(0x41) },
    { type: "negotiate", verb: WILL, option: OPTION.COM_PORT },
    { type: "data", data: Uint8Array.of(0x42) },
    { type: "sub", option: OPTION.COM_PORT, payload: Uint8Array.of(101, 0x00, 0xff, 0xff, 0x00) },
    { type: "command", code: TELNET.NOP },
    { type: "data", data: Uint8Array.of(0x43) },
  ];
  for (let cut = 0; cut <= wire.length; cut++) {
    assert.deepEqual(decode(wire, [cut]), expected, `cut at ${cut}`);
  }
  // the 0xFF bytes of the baud value were doubled inside the subnegotiation
  assert.deepEqual(sub, Uint8Array.of(IAC, SB, 44, 101, 0x00, IAC, IAC, IAC, IAC, 0x00, IAC, SE));
  assert.equal(readBaud(Uint8Array.of(0x00, 0x1e, 0x84, 0x80)), 2_000_000);
  assert.equal(readBaud(Uint8Array.of(1, 2)), null);
});

Deno.test("telnet: outside BINARY mode CR goes as CR NUL and CR NUL reads as CR", () => {
  assert.deepEqual(escapeData(Uint8Array.of(0x0d, 0x41), false), Uint8Array.of(0x0d, 0x00, 0x41));
  assert.deepEqual(decode(Uint8Array.of(0x0d, 0x00, 0x41, 0x0d, 0x0a), [1], false), [
    { type: "data", data: Uint8Array.of(0x0d, 0x41, 0x0d, 0x0a) },
  ]);
  assert.deepEqual(decode(Uint8Array.of(0x0d, 0x00), [], true), [
    { type: "data", data: Uint8Array.of(0x0d, 0x00) },
  ], "in BINARY mode the NUL is data");
});

Deno.test("telnet: option negotiation answers once, refuses what it does not do, and never loops", () => {
  const t = new OptionTable([OPTION.BINARY], [OPTION.BINARY, OPTION.COM_PORT]);
  assert.deepEqual(t.request(OPTION.COM_PORT, "them"), negotiation(DO, OPTION.COM_PORT));
  assert.equal(t.request(OPTION.COM_PORT, "them"), null, "asked once");
  assert.equal(t.receive(WILL, OPTION.COM_PORT), null, "the answer to our DO is not answered");
  assert.ok(t.them(OPTION.COM_PORT));
  assert.deepEqual(t.receive(DO, OPTION.BINARY), negotiation(WILL, OPTION.BINARY));
  assert.equal(t.receive(DO, OPTION.BINARY), null, "a repeated request for the state in force");
  assert.deepEqual(t.receive(DO, OPTION.ECHO), negotiation(WONT, OPTION.ECHO));
  assert.deepEqual(
    t.receive(WILL, OPTION.ECHO),
    negotiation(DONT, OPTION.ECHO),
    "no echo of a binary stream",
  );
  assert.deepEqual(t.receive(DONT, OPTION.BINARY), negotiation(WONT, OPTION.BINARY));
  assert.equal(t.us(OPTION.BINARY), false);

  const refusing = new OptionTable([OPTION.COM_PORT], []);
  refusing.request(OPTION.COM_PORT, "us");
  assert.equal(refusing.receive(DONT, OPTION.COM_PORT), null);
  assert.ok(refusing.refused(OPTION.COM_PORT, "us"));
});

Deno.test("telnet: a subnegotiation ends at IAC SE and holds doubled IACs", () => {
  const wire = subnegotiation(OPTION.COM_PORT, Uint8Array.of(100, IAC, 0x42));
  assert.deepEqual(decode(wire, []), [{ type: "sub", option: 44, payload: Uint8Array.of(100, IAC, 0x42) }]);
});
