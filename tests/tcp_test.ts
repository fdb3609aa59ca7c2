import assert from "node:assert/strict";
import { openTcp, parseTcpUrl } from "../core/io/tcp.ts";
import { LinkClosedError } from "../core/io/link.ts";
import { FlashError } from "../core/errors.ts";

/** A loopback server that runs `handle` on its first connection. */
function server(handle: (conn: Deno.Conn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    try {
      await handle(conn);
    } finally {
      try {
        conn.close();
      } catch {
        // closed already
      }
    }
  })();
  return {
    url: `tcp://127.0.0.1:${listener.addr.port}`,
    async stop() {
      listener.close();
      await done;
    },
  };
}

async function readExactly(link: { read(max: number, ms: number): Promise<Uint8Array> }, n: number) {
  const out: number[] = [];
  while (out.length < n) {
    const chunk = await link.read(n - out.length, 5000);
    if (!chunk.length) throw new Error("timeout");
    out.push(...chunk);
  }
  return Uint8Array.from(out);
}

Deno.test("tcp: bytes go both ways; no modem lines; setBaud only records", async () => {
  const srv = server(async (conn) => {
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    await conn.write(buf.subarray(0, n ?? 0).map((b) => b ^ 0xff));
    await conn.read(buf);
  });
  const link = await openTcp(srv.url);
  try {
    assert.equal(link.name, srv.url);
    assert.equal(link.hasModemLines, false);
    await link.setSignals({ dtr: true, rts: true });
    await link.setBaud(2_000_000);
    assert.equal(link.baud, 2_000_000);
    await link.write(Uint8Array.of(1, 2, 3));
    await link.drain();
    assert.deepEqual(await readExactly(link, 3), Uint8Array.of(0xfe, 0xfd, 0xfc));
    assert.equal((await link.read(10, 1)).length, 0);
  } finally {
    await link.close();
    await srv.stop();
  }
});

Deno.test("tcp: the bridge closing mid-read gives LinkClosedError after the data it sent", async () => {
  const srv = server(async (conn) => {
    await conn.write(Uint8Array.of(7, 8));
  });
  const link = await openTcp(srv.url);
  try {
    assert.deepEqual(await readExactly(link, 2), Uint8Array.of(7, 8));
    await assert.rejects(link.read(16, 60_000), LinkClosedError);
  } finally {
    await link.close();
    await srv.stop();
  }
});

Deno.test("tcp: close() ends a pending read", async () => {
  const srv = server(async (conn) => {
    await conn.read(new Uint8Array(1));
  });
  const link = await openTcp(srv.url);
  const pending = assert.rejects(link.read(16, 60_000), LinkClosedError);
  await link.close();
  await pending;
  await link.close();
  await srv.stop();
});

Deno.test("tcp: nothing listening gives a PORT error naming the address", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const url = `tcp://127.0.0.1:${port}`;
  await assert.rejects(openTcp(url, { connectTimeoutMs: 2000 }), (e: unknown) => {
    assert.ok(e instanceof FlashError);
    assert.equal(e.code, "PORT");
    assert.equal(e.message, `cannot reach the serial bridge at ${url} (connection refused)`);
    assert.match(e.remedy, /deno task emulate --tcp/);
    return true;
  });
});

Deno.test("tcp: address parsing", () => {
  assert.deepEqual(parseTcpUrl("tcp://192.168.1.50:8888"), { hostname: "192.168.1.50", port: 8888 });
  assert.deepEqual(parseTcpUrl("tcp://[::1]:23/"), { hostname: "::1", port: 23 });
  for (const bad of ["tcp://host", "tcp://host:0", "tcp://host:70000", "http://a:1", "tcp://:5"]) {
    assert.throws(() => parseTcpUrl(bad), (e: unknown) => e instanceof FlashError && e.code === "USAGE", bad);
  }
});
