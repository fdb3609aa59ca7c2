import assert from "node:assert/strict";
import { FlashError } from "../core/errors.ts";
import { type ByteLink, LinkClosedError } from "../core/io/link.ts";
import { openRfc2217, parseRfc2217Url } from "../core/io/rfc2217.ts";
import { COM_PORT, comPortCommand, negotiation, OPTION, TELNET } from "../core/io/telnet.ts";
import { main as flashMain } from "../cli/flash.ts";
import type { CliIO } from "../cli/output.ts";
import { parsePortSpec } from "../core/io/port_spec.ts";
import { serveRfc2217 } from "../emulator/rfc2217_server.ts";
import type { ResetLine } from "../emulator/reset_wiring.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { defaultImage } from "../emulator/image.ts";
import { chipById } from "../core/chips/profiles.ts";
import { assertSameBytes } from "./support/bytes.ts";

const LINK_CHECK = Uint8Array.of(0x01, 0xe0, 0xfc, 0x01, 0x00);
const LINK_REPLY = Uint8Array.of(0x04, 0x0e, 0x05, 0x01, 0xe0, 0xfc, 0x01, 0x00);

function captureIO(): CliIO & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => out.push(t), stderr: (t) => err.push(t), stderrIsTTY: false };
}

async function readUpTo(link: ByteLink, n: number, timeoutMs: number): Promise<Uint8Array> {
  const out: number[] = [];
  const end = performance.now() + timeoutMs;
  while (out.length < n && performance.now() < end) {
    out.push(...await link.read(n - out.length, Math.max(1, end - performance.now())));
  }
  return Uint8Array.from(out);
}

/** Whether the chip answers a link check within 300 ms (sent every 20 ms, as a flasher does). */
async function answers(link: ByteLink): Promise<boolean> {
  await link.flushInput();
  for (let i = 0; i < 15; i++) {
    await link.write(LINK_CHECK);
    const got = await readUpTo(link, LINK_REPLY.length, 20);
    if (got.length === LINK_REPLY.length && got.every((b, k) => b === LINK_REPLY[k])) return true;
  }
  return false;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every 20 ms until it holds; fail after `ms`. */
async function until(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await sleep(20);
  }
}

/** Bytes in the files of `dir` (an output being streamed has no fixed name). */
async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) n += (await Deno.stat(`${dir}/${e.name}`).catch(() => ({ size: 0 }))).size;
  }
  return n;
}

async function emulator(resetLine: ResetLine = "rts", image?: Uint8Array) {
  const virtual = await createVirtualChip({ chip: "bk7231n", image });
  const log: string[] = [];
  const server = serveRfc2217(virtual.chip, { port: 0 }, { resetLine, log: (l) => log.push(l) });
  return { virtual, server, log };
}

Deno.test("rfc2217: port specs and addresses", () => {
  assert.deepEqual(parsePortSpec("rfc2217://127.0.0.1:4001"), {
    kind: "rfc2217",
    host: "127.0.0.1",
    port: 4001,
  });
  assert.deepEqual(parsePortSpec("RFC2217://[::1]:4001/"), { kind: "rfc2217", host: "::1", port: 4001 });
  assert.throws(() => parsePortSpec("rfc2217://host"), /expected rfc2217:\/\/host:port/);
  assert.deepEqual(parseRfc2217Url("rfc2217://lab-pi:2001"), { hostname: "lab-pi", port: 2001 });
  assert.throws(() => parseRfc2217Url("rfc2217://lab-pi:0"), FlashError);
});

Deno.test("rfc2217: chip-info and a 2 Mbaud read through the emulator's RFC 2217 server, baud changes told to it", async () => {
  const image = crypto.getRandomValues(new Uint8Array(0x10000)).map((b, i) => (i % 7 === 0 ? 0xff : b));
  const profile = chipById("bk7231n")!;
  const flash = defaultImage(profile, profile.flashSize);
  // keep the emulated bootloader: only the application area gets the 0xFF-rich pattern
  flash.set(image, 0x11000);
  const { server, log } = await emulator("rts", flash);
  try {
    const io = captureIO();
    const code = await flashMain(["--port", server.address, "chip-info", "--json"], { io });
    assert.equal(code, 0, io.err.join(""));
    assert.equal(JSON.parse(io.out.join("")).chip, "BK7231N");

    const dir = await Deno.makeTempDir();
    const io2 = captureIO();
    const code2 = await flashMain([
      "--port",
      server.address,
      "--baud",
      "2000000",
      "read-flash",
      "--addr",
      "0x11000",
      "--size",
      "0x10000",
      "--out",
      `${dir}/part.bin`,
    ], { io: io2 });
    assert.equal(code2, 0, io2.err.join(""));
    // every seventh byte is 0xFF: the server doubled them and the client undid it
    assertSameBytes(await Deno.readFile(`${dir}/part.bin`), image, "read through RFC 2217");
    assert.ok(log.some((l) => l.includes("client set 2000000 baud (RFC 2217)")), log.join("\n"));
    await Deno.remove(dir, { recursive: true });
  } finally {
    await server.close();
  }
});

Deno.test("rfc2217: an RTS pulse reaches the chip model and reopens the boot window", async () => {
  const { virtual, server } = await emulator("rts");
  const link = await openRfc2217(server.address);
  try {
    assert.equal(link.modemState, 0, "the server's NOTIFY-MODEMSTATE (no modem inputs wired) was kept");
    await sleep(600); // the boot window the connection opened has closed: the firmware runs
    assert.equal(await answers(link), false, "no loader after the window");
    assert.equal(virtual.chip.stateAt(server.now()), "app");
    await link.setSignals({ dtr: false, rts: true });
    assert.equal(link.modemControl, "confirmed");
    assert.equal(virtual.chip.stateAt(server.now()), "off", "RTS asserted holds CEN low");
    await sleep(50);
    await link.setSignals({ rts: false });
    assert.equal(await answers(link), true, "released: the boot window is open again");
    assert.equal(link.hasModemLines, true);
  } finally {
    await link.close();
    await server.close();
  }
});

Deno.test("rfc2217: with --reset-line dtr, DTR resets the chip and RTS does not", async () => {
  const { server } = await emulator("dtr");
  const link = await openRfc2217(server.address);
  try {
    await sleep(600);
    await link.setSignals({ rts: true });
    await link.setSignals({ rts: false });
    assert.equal(await answers(link), false, "RTS is not wired");
    await link.setSignals({ dtr: true });
    await link.setSignals({ dtr: false });
    assert.equal(await answers(link), true, "DTR is");
  } finally {
    await link.close();
    await server.close();
  }
});

/** A loopback server that answers the client's telnet negotiation its own way. */
function fakeServer(onData: (conn: Deno.Conn, data: Uint8Array) => Promise<void> | void) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const done = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      (async () => {
        const buf = new Uint8Array(4096);
        try {
          for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
            await onData(conn, buf.slice(0, n));
          }
        } catch {
          // closed
        }
      })();
    }
  })().catch(() => {});
  return {
    url: `rfc2217://127.0.0.1:${listener.addr.port}`,
    conns,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      await done;
    },
  };
}

/** Answers COM-PORT with DO and echoes every COM-PORT command back as confirmed, except SET-CONTROL. */
async function answerWithoutModemControl(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  const out: number[] = [];
  for (let i = 0; i + 2 < data.length; i++) {
    if (data[i] === TELNET.IAC && data[i + 1] === TELNET.WILL && data[i + 2] === OPTION.COM_PORT) {
      out.push(...negotiation(TELNET.DO, OPTION.COM_PORT));
    }
    if (data[i] === TELNET.IAC && data[i + 1] === TELNET.SB && data[i + 2] === OPTION.COM_PORT) {
      const code = data[i + 3];
      const end = data.indexOf(TELNET.SE, i);
      if (code !== COM_PORT.SET_CONTROL) {
        out.push(...comPortCommand(code + 100, data.subarray(i + 4, end - 1)));
      }
    }
  }
  await conn.write(Uint8Array.from(out));
}

Deno.test("rfc2217: a server that never confirms DTR/RTS is reported once and then treated as one without modem lines", async () => {
  const server = fakeServer(answerWithoutModemControl);
  const notices: string[] = [];
  const link = await openRfc2217(server.url, { ackTimeoutMs: 200, onNotice: (n) => notices.push(n) });
  try {
    assert.equal(link.hasModemLines, true, "not known before the first change");
    await link.setSignals({ dtr: true, rts: true });
    assert.equal(link.hasModemLines, false);
    assert.equal(link.modemControl, "absent");
    const t = performance.now();
    await link.setSignals({ rts: false });
    assert.ok(performance.now() - t < 100, "no second wait");
    assert.equal(notices.length, 1, notices.join("\n"));
    assert.match(
      notices[0],
      /does not confirm DTR\/RTS changes.*resets through DTR\/RTS are not possible there/,
    );
    await link.setBaud(921600);
    assert.equal(link.baud, 921600, "the rest of the option still works");
  } finally {
    await link.close();
    await server.close();
  }
});

Deno.test("rfc2217: clear errors for a refused option, a raw TCP port, an unreachable host", async () => {
  const refusing = fakeServer(async (conn, data) => {
    if (data.includes(OPTION.COM_PORT)) await conn.write(negotiation(TELNET.DONT, OPTION.COM_PORT));
  });
  const silent = fakeServer(() => {});
  try {
    await assert.rejects(openRfc2217(refusing.url), (e) => {
      assert.ok(e instanceof FlashError && e.code === "PORT");
      assert.match(e.message, /refused RFC 2217 serial port control/);
      assert.match(e.remedy, /telnet\(rfc2217\)/);
      return true;
    });
    await assert.rejects(openRfc2217(silent.url, { negotiationTimeoutMs: 300 }), (e) => {
      assert.ok(e instanceof FlashError && e.code === "PORT");
      assert.match(e.message, /answered no telnet negotiation within 300 ms: not an RFC 2217 server/);
      return true;
    });
  } finally {
    await refusing.close();
    await silent.close();
  }
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `rfc2217://127.0.0.1:${free.addr.port}`;
  free.close();
  const io = captureIO();
  const code = await flashMain(["--port", url, "chip-info"], { io });
  assert.notEqual(code, 0);
  assert.match(
    io.err.join(""),
    /cannot reach the RFC 2217 server at rfc2217:\/\/127\.0\.0\.1:\d+ \(connection refused\)/,
  );
});

Deno.test("rfc2217: the server going away mid-read ends the job with the disconnected error", async () => {
  const { server } = await emulator("rts");
  const dir = await Deno.makeTempDir();
  try {
    const io = captureIO();
    const job = flashMain([
      "--port",
      server.address,
      "--baud",
      "115200",
      "read-flash",
      "--out",
      `${dir}/b.bin`,
    ], {
      io,
    });
    // close once the read is under way (the output has grown), whatever the machine's speed
    await until(async () => (await dirBytes(dir)) >= 0x10000, 60_000);
    await server.close();
    const code = await job;
    assert.equal(code, 5, io.err.join(""));
    assert.match(io.err.join(""), /disconnected.*rfc2217:\/\/127\.0\.0\.1/i);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rfc2217: a link closed locally refuses further use", async () => {
  const { server } = await emulator("rts");
  const link = await openRfc2217(server.address);
  await link.close();
  await assert.rejects(link.write(LINK_CHECK), LinkClosedError);
  await assert.rejects(link.read(1, 10), LinkClosedError);
  await server.close();
});

Deno.test("rfc2217: the server going away mid-write ends the job naming the range that may differ", async () => {
  const { server, virtual } = await emulator("rts");
  const dir = await Deno.makeTempDir();
  try {
    const image = Uint8Array.from({ length: 0x40000 }, (_, i) => (i * 7) & 0xff);
    const before = virtual.nor.snapshot().data.slice(0x11000, 0x12000);
    await Deno.writeFile(`${dir}/app.bin`, image);
    const io = captureIO();
    const job = flashMain(
      ["--port", server.address, "--no-backup", "write-flash", `${dir}/app.bin`, "--addr", "0x11000"],
      { io },
    );
    // close once the first sector of the image has changed on the chip: the write is under way
    await until(() => {
      const now = virtual.nor.snapshot().data.subarray(0x11000, 0x12000);
      return Promise.resolve(now.some((b, i) => b !== before[i]));
    }, 60_000);
    await server.close();
    const code = await job;
    const err = io.err.join("");
    assert.notEqual(code, 0, err);
    assert.match(err, /disconnected.*rfc2217:\/\/127\.0\.0\.1/i);
    assert.match(err, /0x[0-9a-f]+\.\.0x[0-9a-f]+|0x[0-9a-f]+ to 0x[0-9a-f]+|0x[0-9a-f]+-0x[0-9a-f]+/i, err);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
