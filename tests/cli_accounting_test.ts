/**
 * The CLI's accounting and speed-related behaviour: an `accounting` object in every --json
 * result and human lines on stderr, the reused backup of a second write said on stderr, and
 * --no-read-ahead. Values are checked for consistency, never against the timing model.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../cli/flash.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let second = 0;

async function flash(args: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const now = new Date(Date.UTC(2026, 10, 22, 2, 0, second++));
  const code = await main(args, {
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stderrIsTTY: false },
    now: () => now,
  });
  return { code, stdout, stderr };
}

type Json = Record<string, unknown>;

function json(r: Run): Json {
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, r.stdout);
  return JSON.parse(lines[0]);
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 29 + seed * 7 + (i >> 9)) & 0xff;
  return out;
}

Deno.test("every command ends with its accounting: a JSON object and lines on stderr", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const state = join(dir, "chip.state");
    const base = ["--port", "virtual:bk7231n", "--state", state, "--backup-dir", join(dir, "bk"), "--json"];

    const info = json(await flash([...base, "chip-info"]));
    const ia = info.accounting as Json;
    assert.equal(ia.timing, "modelled");
    assert.equal(ia.operation, null);
    const session = ia.session as Json;
    assert.ok((session.roundTrips as number) > 0 && (session.elapsedMs as number) > 0);

    const out = join(dir, "read.bin");
    const r = await flash([...base, "read-flash", "--addr", "0x11000", "--size", "0x20000", "--out", out]);
    const op = (json(r).accounting as Json).operation as Json;
    assert.equal(op.op, "read");
    assert.equal(op.payloadBytes, 0x20000);
    assert.ok((op.bytesIn as number) > 0x20000 && (op.bytesOut as number) > 0);
    assert.ok((op.floorRatio as number) >= 1, "never faster than the wire");
    const floor = (0x20000 * 10 * 1000) / 921600;
    assert.ok(Math.abs((op.wireFloorMs as number) - floor) < 0.1);
    assert.match(
      r.stderr,
      /accounting \(modelled time\):\n {2}read: 128 KiB in [\d.]+ s, [\d.]+ KiB\/s, [\d.]+x the wire floor/,
    );
    assert.equal((await Deno.readFile(out)).length, 0x20000);

    const image = join(dir, "app.bin");
    await Deno.writeFile(image, pattern(0x30000, 1));
    const w1 = json(await flash([...base, "write-flash", image, "--addr", "0x11000"]));
    const a1 = w1.accounting as Json;
    assert.equal((a1.backup as Json).reused, false);
    assert.equal((a1.operation as Json).op, "write");
    assert.ok(typeof w1.afterImage === "string");

    await Deno.writeFile(image, pattern(0x30000, 1).map((b, i) => (i === 0x15123 ? b ^ 1 : b)));
    const r2 = await flash([...base, "write-flash", image, "--addr", "0x11000"]);
    const w2 = json(r2);
    assert.equal(w2.changed, 1);
    assert.equal(w2.backup, w1.afterImage);
    assert.equal(w2.backupReused, true);
    const b2 = (w2.accounting as Json).backup as Json;
    assert.equal(b2.reused, true);
    assert.equal(b2.roundTrips, 1, "one CheckCRC instead of a read");
    assert.match(r2.stderr, /backup: reusing .*after\.bin .*nothing read/);
    assert.match(r2.stderr, /backup: reused, the chip's CRC matches it/);

    const v = json(await flash([...base, "--no-read-ahead", "verify-flash", image, "--addr", "0x11000"]));
    assert.equal(v.verified, true);
    assert.equal(((v.accounting as Json).operation as Json).roundTrips, 1, "one CRC over the whole image");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--no-read-ahead gives the same bytes, one request at a time", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const state = join(dir, "chip.state");
    const base = ["--port", "virtual:bk7231n", "--state", state, "--json"];
    const a = json(await flash([...base, "read-flash", "--size", "0x10000", "--out", join(dir, "a.bin")]));
    const b = json(
      await flash([
        ...base,
        "--no-read-ahead",
        "read-flash",
        "--size",
        "0x10000",
        "--out",
        join(dir, "b.bin"),
      ]),
    );
    assert.equal(a.crc32, b.crc32);
    assert.deepEqual(await Deno.readFile(join(dir, "a.bin")), await Deno.readFile(join(dir, "b.bin")));
    const ra = (a.accounting as Json).operation as Json;
    const rb = (b.accounting as Json).operation as Json;
    assert.equal(ra.roundTrips, rb.roundTrips, "the same requests either way");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
