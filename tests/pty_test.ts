import assert from "node:assert/strict";
import { Pty } from "../emulator/pty.ts";
import { openSerial } from "../core/io/serial/mod.ts";

const linux = Deno.build.os === "linux";

Deno.test({
  name: "pty: the master sees a client arrive, send, set its baud and leave, and the next one arrive",
  ignore: !linux,
  fn: async () => {
    const pty = Pty.open();
    try {
      assert.match(pty.path, /^\/dev\/pts\/\d+$/);
      assert.equal(pty.connected, false);
      assert.equal(pty.clientBaud(), 115200, "the slave starts raw at 115200");
      assert.equal(await pty.write(Uint8Array.of(1)), false, "nobody listens yet");

      const first = await openSerial(pty.path);
      assert.equal(await pty.next(), "connected");
      assert.equal(pty.connected, true);
      await first.write(Uint8Array.of(0x01, 0xe0, 0xfc));
      assert.equal(await pty.next(), "data");
      assert.deepEqual(pty.read(16), Uint8Array.of(0x01, 0xe0, 0xfc));
      await first.setBaud(1_234_567);
      assert.equal(pty.clientBaud(), 1_234_567, "BOTHER rate read on the master");
      assert.equal(await pty.write(Uint8Array.of(0x04, 0x0e)), true);
      assert.deepEqual(await first.read(2, 5000), Uint8Array.of(0x04, 0x0e));
      await first.close();
      assert.equal(await pty.next(), "disconnected");
      assert.equal(pty.connected, false);

      const second = await openSerial(pty.path);
      assert.equal(await pty.next(), "connected");
      await second.close();
      assert.equal(await pty.next(), "disconnected");
    } finally {
      await pty.close();
    }
  },
});

Deno.test({
  name: "pty: bytes a client sent just before closing are still delivered",
  ignore: !linux,
  fn: async () => {
    const pty = Pty.open();
    try {
      const client = await openSerial(pty.path);
      assert.equal(await pty.next(), "connected");
      await client.write(new TextEncoder().encode("reboot\r\n"));
      await client.close();
      const got: number[] = [];
      for (let ev = await pty.next(); ev === "data"; ev = await pty.next()) got.push(...pty.read(64));
      assert.equal(new TextDecoder().decode(Uint8Array.from(got)), "reboot\r\n");
      assert.equal(pty.connected, false);
    } finally {
      await pty.close();
    }
  },
});

Deno.test({
  name: "pty: close() ends a pending wait with 'closed' and is idempotent",
  ignore: !linux,
  fn: async () => {
    const pty = Pty.open();
    const client = await openSerial(pty.path);
    assert.equal(await pty.next(), "connected");
    const waiting = pty.next();
    await pty.close();
    assert.equal(await waiting, "closed");
    assert.equal(await pty.next(), "closed");
    await pty.close();
    await client.close();
  },
});
