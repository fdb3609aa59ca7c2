import assert from "node:assert/strict";
import { main as emulateMain } from "../cli/emulate.ts";
import { main as flashMain } from "../cli/flash.ts";
import type { CliIO } from "../cli/output.ts";
import { parseControlLine } from "../emulator/control.ts";

function captureIO(): CliIO & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => out.push(t), stderr: (t) => err.push(t), stderrIsTTY: false };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function firstLine(io: { out: string[] }): Promise<string> {
  for (let i = 0; i < 200 && !io.out.join("").includes("\n"); i++) await sleep(10);
  return io.out.join("").split("\n")[0];
}

/** One request on the control socket, one answer. */
async function ask(conn: Deno.Conn, line: string): Promise<Record<string, unknown>> {
  await conn.write(new TextEncoder().encode(line + "\n"));
  const buf = new Uint8Array(1024);
  let text = "";
  while (!text.includes("\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return JSON.parse(text);
}

Deno.test("emulate --rfc2217: the first stdout line is the address, and the flasher works through it", async () => {
  const io = captureIO();
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const serving = emulateMain(["--chip", "bk7231n", "--rfc2217", "127.0.0.1:0"], { io, stop: stopped });
  try {
    const address = await firstLine(io);
    assert.match(address, /^rfc2217:\/\/127\.0\.0\.1:\d+$/);
    const fio = captureIO();
    const code = await flashMain(["--port", address, "chip-info", "--json"], { io: fio });
    assert.equal(code, 0, fio.err.join(""));
    assert.equal(JSON.parse(fio.out.join("")).chip, "BK7231N");
  } finally {
    stop();
    assert.equal(await serving, 0, io.err.join(""));
  }
  assert.match(io.err.join(""), /RTS drives CEN/);
  assert.match(io.err.join(""), /client set 921600 baud \(RFC 2217\)/);
});

Deno.test("emulate: --rfc2217 is loopback only and one serving mode at a time", async () => {
  for (
    const [args, why] of [
      [["--rfc2217", "0.0.0.0:0"], /loopback only/],
      [["--pty", "--rfc2217", "127.0.0.1:0"], /one of --pty, --tcp or --rfc2217/],
      [["--rfc2217", "127.0.0.1:0", "--reset-line", "cts"], /reset-line/],
    ] as const
  ) {
    const io = captureIO();
    assert.equal(await emulateMain(args, { io, stop: Promise.resolve() }), 2, io.err.join(""));
    assert.match(io.err.join(""), why);
  }
});

Deno.test({
  name:
    "emulate --pty --control: JSON lines hold the chip in reset, release it, reset it; bad lines are answered",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/chip.sock`;
    const io = captureIO();
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const serving = emulateMain(["--chip", "bk7231n", "--pty", "--control", path], { io, stop: stopped });
    try {
      assert.match(await firstLine(io), /^\/dev\/pts\/\d+$/);
      const conn = await Deno.connect({ transport: "unix", path });
      try {
        assert.deepEqual(await ask(conn, '{"dtr":false,"rts":true}'), { ok: true, dtr: false, rts: true });
        assert.deepEqual(await ask(conn, '{"rts":false}'), { ok: true, dtr: false, rts: false });
        assert.deepEqual(await ask(conn, '{"reset":true}'), { ok: true, dtr: false, rts: false });
        const bad = await ask(conn, "reset");
        assert.equal(bad.ok, false);
        assert.match(String(bad.error), /not JSON/);
        assert.equal((await ask(conn, '{"rts":1}')).ok, false, "the connection survives bad lines");
      } finally {
        conn.close();
      }
    } finally {
      stop();
      assert.equal(await serving, 0, io.err.join(""));
      await Deno.remove(dir, { recursive: true });
    }
    const log = io.err.join("");
    assert.match(log, /control: DTR=0 RTS=1/);
    assert.match(log, /control: chip reset/);
  },
});

Deno.test("control lines: what is accepted and what is refused", () => {
  assert.deepEqual(parseControlLine('{"dtr":false,"rts":true}'), { dtr: false, rts: true });
  assert.deepEqual(parseControlLine('{"reset":true}'), { reset: true });
  for (const bad of ["", "[]", "{}", '{"rts":"yes"}', '{"power":true}', "null"]) {
    assert.throws(() => parseControlLine(bad), Error, bad);
  }
});
