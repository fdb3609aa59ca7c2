/**
 * The browser front end's pieces outside a browser: the Web Serial link against a fake port
 * shaped like the browser's `SerialPort` (streams, locks, reopen on a baud change, unplug), the
 * page's flow over that link to an emulated chip and over a WebUSB-shaped CH341A, the bundle
 * guard, and the browser CRC.
 *
 * @module
 */

import assert from "node:assert/strict";
import { crc32 as zlibCrc32 } from "node:zlib";
import { FlashError } from "../core/errors.ts";
import { MemoryStore } from "../core/flasher/store.ts";
import { LinkClosedError } from "../core/io/link.ts";
import { type SerialOpenOptions, type SerialPortLike, WebSerialLink } from "../core/io/web_serial.ts";
import { wireMs } from "../core/timing.ts";
import { misheard } from "../emulator/baud_mismatch.ts";
import { buildVirtualChip } from "../emulator/build_chip.ts";
import type { UartDevice } from "../emulator/uart_device.ts";
import { forbiddenUses } from "../web/build.ts";
import { backupChip, describeError, openSpiSession, openUartSession, writeImage } from "../web/flow.ts";
import { crc32 as browserCrc32 } from "../web/shims/zlib.ts";
import { createPageVirtual, parsePagePlan } from "../web/virtual.ts";
import { assertSameBytes } from "./support/bytes.ts";

/**
 * A fake Web Serial port: the streams exist only while open, `close()` fails while a stream is
 * locked (as in Chromium), and what is written goes to `device`, whose answers come back on
 * the readable stream (garbled when the device's rate differs from the port's).
 */
class FakeSerialPort implements SerialPortLike {
  readable: ReadableStream<Uint8Array> | null = null;
  writable: WritableStream<Uint8Array> | null = null;
  opens: SerialOpenOptions[] = [];
  signals: { dataTerminalReady?: boolean; requestToSend?: boolean }[] = [];
  #push: ((data: Uint8Array) => void) | null = null;
  #fail: ((e: Error) => void) | null = null;
  #origin = performance.now();
  #busyUntil = 0;
  constructor(readonly device: UartDevice | ((data: Uint8Array) => Uint8Array)) {}

  open(options: SerialOpenOptions): Promise<void> {
    if (this.readable) {
      return Promise.reject(new DOMException("The port is already open.", "InvalidStateError"));
    }
    this.opens.push(options);
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#push = (d) => controller.enqueue(d);
        this.#fail = (e) => controller.error(e);
      },
    });
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => {
        if (typeof this.device === "function") {
          const out = this.device(chunk);
          if (out.length) this.#push?.(out);
          return;
        }
        // replies are handed over at once, so the device's time runs ahead of the wall clock:
        // a request is heard after the reply before it has ended, and after its own wire time
        const now = Math.max(performance.now() - this.#origin, this.#busyUntil) +
          wireMs(chunk.length, options.baudRate);
        for (const c of this.device.receive(chunk, now)) {
          this.#busyUntil = Math.max(this.#busyUntil, c.at + wireMs(c.data.length, c.baud));
          this.#push?.(c.baud === options.baudRate ? c.data : misheard(c.data, c.baud, options.baudRate));
        }
      },
    });
    if (typeof this.device !== "function") this.device.reset(performance.now() - this.#origin);
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.readable?.locked || this.writable?.locked) {
      return Promise.reject(new TypeError("Cannot close a port whose streams are locked."));
    }
    this.readable = null;
    this.writable = null;
    return Promise.resolve();
  }

  setSignals(s: { dataTerminalReady?: boolean; requestToSend?: boolean }): Promise<void> {
    this.signals.push(s);
    if (typeof this.device !== "function") {
      this.device.signals(
        { dtr: s.dataTerminalReady ?? false, rts: s.requestToSend ?? false },
        performance.now() - this.#origin,
      );
    }
    return Promise.resolve();
  }

  getInfo() {
    return { usbVendorId: 0x1a86, usbProductId: 0x7523 };
  }

  /** The adapter is pulled out: the readable stream errors. */
  unplug(): void {
    this.#fail?.(new DOMException("The device has been lost.", "NetworkError"));
  }

  /** Bytes arrive unasked. */
  inject(data: Uint8Array): void {
    this.#push?.(data);
  }
}

Deno.test("web serial: bytes both ways, a read waits or times out, the name carries the USB IDs", async () => {
  const port = new FakeSerialPort((d) => d.map((b) => b ^ 0xff));
  const link = await WebSerialLink.open(port, { baud: 115200 });
  assert.equal(link.name, "web-serial:1a86:7523");
  assert.deepEqual(port.opens[0], {
    baudRate: 115200,
    dataBits: 8,
    stopBits: 1,
    parity: "none",
    flowControl: "none",
    bufferSize: 65536,
  });
  assert.equal((await link.read(16, 20)).length, 0);
  await link.write(Uint8Array.of(1, 2, 3));
  assert.deepEqual([...await link.read(2, 1000)], [0xfe, 0xfd]);
  assert.deepEqual([...await link.read(16, 1000)], [0xfc]);
  port.inject(Uint8Array.of(9));
  await new Promise((r) => setTimeout(r, 20)); // the browser hands it to the reader a task later
  await link.flushInput();
  assert.equal((await link.read(1, 10)).length, 0);
  await link.close();
  await link.close();
  assert.equal(port.readable, null, "close() gave the streams back and closed the port");
});

Deno.test("web serial: a baud change reopens the port at the new rate and sets the modem lines again", async () => {
  const port = new FakeSerialPort((d) => d);
  const link = await WebSerialLink.open(port);
  await link.setSignals({ dtr: false, rts: true });
  assert.deepEqual(port.signals.at(-1), { dataTerminalReady: false, requestToSend: true });
  await link.setBaud(2_000_000);
  assert.equal(link.baud, 2_000_000);
  assert.deepEqual(port.opens.map((o) => o.baudRate), [115200, 2_000_000]);
  assert.deepEqual(port.signals.at(-1), { dataTerminalReady: false, requestToSend: true });
  await link.write(Uint8Array.of(7));
  assert.deepEqual([...await link.read(1, 1000)], [7], "the reopened streams carry bytes");
  await link.close();
});

Deno.test("web serial: an unplugged adapter is a LinkClosedError on the next read and write", async () => {
  const port = new FakeSerialPort((d) => d);
  const link = await WebSerialLink.open(port);
  port.unplug();
  await assert.rejects(() => link.read(1, 1000), LinkClosedError);
  await assert.rejects(() => link.write(Uint8Array.of(1)), LinkClosedError);
  await link.close();
});

Deno.test("web serial: a port the browser cannot open is a PORT error with a remedy", async () => {
  const port = new FakeSerialPort((d) => d);
  await port.open({ baudRate: 9600 });
  const e = await WebSerialLink.open(port).catch((x) => x);
  assert.ok(e instanceof FlashError && e.code === "PORT", String(e));
  assert.match(e.remedy, /other programs or tabs/);
});

Deno.test("web flow: over Web Serial to an emulated BK7231N: identify, write with a backup first", async () => {
  const v = buildVirtualChip({ chip: "bk7231n" });
  const port = new FakeSerialPort(v.chip);
  const link = await WebSerialLink.open(port);
  const s = await openUartSession(link, { baud: 115200, linkTimeoutMs: 3000 });
  try {
    assert.equal(s.identity.chip, "BK7231N");
    assert.equal(s.identity.flashId, "eb6015");
    assert.equal(s.info.key, "510fb093 a3cbeadc 5993a17e c7adeb03");
    const image = new Uint8Array(8192).map((_, i) => (i * 7) & 0xff);
    const store = new MemoryStore();
    const before = v.nor.snapshot().data;
    const r = await writeImage(s, store, { image, addr: 0x11000 });
    assert.equal(r.changed, 2);
    const names = [...store.entries.keys()];
    const bin = names.find((n) => n.endsWith(".bin"))!;
    assertSameBytes(store.entries.get(bin)!, before, "backup taken before the write");
    assertSameBytes(v.nor.snapshot().data.subarray(0x11000, 0x13000), image, "written image");
    const guard = await writeImage(s, new MemoryStore(), { image, addr: 0 }).catch((e) => e);
    assert.ok(guard instanceof FlashError && guard.code === "BOOTLOADER_GUARD", String(guard));
    assert.match(describeError(guard).remedy ?? "", /allow writing the bootloader window/);
  } finally {
    await s.close();
  }
});

Deno.test("web flow: over a WebUSB-shaped CH341A in SPI mode, the backup is the chip's flash", async () => {
  const v = createPageVirtual("bk7231n", "spi", null, 3);
  const s = await openSpiSession(v.device!, { clock: v.chip.clock, name: "virtual CH341A" });
  try {
    assert.equal(s.identity.flashId, "eb6015");
    const store = new MemoryStore();
    const b = await backupChip(s, store);
    assertSameBytes(b.data, v.flash(), "SPI backup");
    assert.ok(store.entries.has(b.sidecar));
  } finally {
    await s.close();
  }
});

Deno.test("web flow: a fault plan in the page injects on the in-page link and is checked per path", async () => {
  const plan = parsePagePlan('{"seed":5,"rates":{"fragment":0.5}}', "uart");
  const v = createPageVirtual("bk7231t", "uart", plan);
  const s = await openUartSession(v.link!, { baud: 921600 });
  await s.close();
  assert.ok((v.recorder.counts().fragment ?? 0) > 0, "fragments were injected");
  assert.equal(parsePagePlan("  ", "uart"), null);
  assert.throws(
    () => parsePagePlan('{"rates":{"usb-fail":0.1}}', "uart"),
    /usb-fail cannot be injected on a virtual: \(UART link\) port/,
  );
  assert.throws(() => parsePagePlan('{"rates":{"nonsense":0.1}}', "spi"), /unknown fault kind/);
  assert.throws(() => parsePagePlan('{"rates":{"fragment":2}}', "uart"), /0\.\.1/);
});

Deno.test("web build guard: Deno.*, node: and npm: imports in a bundle are named with their line", () => {
  const bundle = [
    'import{a}from"./x.js";',
    "const t=Deno.env.get('X');",
    'import{crc32}from"node:zlib";',
    'const m=await import("npm:usb@3");',
    "const ok=globalThis.Denominator;",
  ].join("\n");
  const found = forbiddenUses(bundle);
  assert.equal(found.length, 3, found.join("\n"));
  assert.match(found[0], /^line 2 uses the Deno namespace/);
  assert.match(found[1], /^line 3 imports a node: module/);
  assert.match(found[2], /^line 4 imports an npm: specifier/);
  assert.deepEqual(forbiddenUses('export const x = "node: is just text";'), []);
});

Deno.test("web build: the page bundles for browsers with no Deno or node: use left", async () => {
  const { buildSite } = await import("../web/build.ts");
  const { bundleBytes } = await buildSite();
  assert.ok(bundleBytes > 10_000);
});

Deno.test("browser CRC-32 equals zlib's on every length and continuation", () => {
  let seed = 1;
  for (const n of [0, 1, 3, 7, 8, 9, 15, 16, 255, 256, 257, 4096, 65537]) {
    const data = new Uint8Array(n).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    for (const prev of [0, 0x12345678]) {
      assert.equal(browserCrc32(data, prev), zlibCrc32(data, prev) >>> 0, `length ${n}, previous ${prev}`);
    }
  }
});

Deno.test("browser AES-128-ECB and gunzip equal node's", async () => {
  const { createCipheriv, createDecipheriv } = await import("node:crypto");
  const { gzipSync, gunzipSync } = await import("node:zlib");
  const shim = await import("../web/shims/crypto.ts");
  const { gunzipSync: shimGunzip } = await import("../web/shims/zlib.ts");
  const key = Uint8Array.from({ length: 16 }, (_, i) => i * 17 + 3);
  const data = Uint8Array.from({ length: 4096 }, (_, i) => (i * 131 + (i >> 5)) & 0xff);
  const node = createCipheriv("aes-128-ecb", key, null).setAutoPadding(false);
  const want = new Uint8Array([...node.update(data), ...node.final()]);
  const enc = shim.createCipheriv("aes-128-ecb", key, null).setAutoPadding(false).update(data);
  assertSameBytes(enc, want, "encrypted");
  const nodeDec = createDecipheriv("aes-128-ecb", key, null).setAutoPadding(false);
  assertSameBytes(new Uint8Array(nodeDec.update(want)), data, "node round trip");
  assertSameBytes(
    shim.createDecipheriv("aes-128-ecb", key, null).setAutoPadding(false).update(want),
    data,
    "decrypted",
  );
  assert.throws(() => shim.createDecipheriv("aes-256-cbc", key, null), /aes-128-ecb only/);
  const gz = new Uint8Array(gzipSync(data));
  assertSameBytes(shimGunzip(gz), new Uint8Array(gunzipSync(gz)), "gunzip");
});
