import assert from "node:assert/strict";
import { openLinuxSerial } from "../core/io/serial/linux.ts";
import { openSerial } from "../core/io/serial/mod.ts";
import { LinkClosedError } from "../core/io/link.ts";
import { FlashError } from "../core/errors.ts";
import { Pty } from "../emulator/pty.ts";
import {
  Cflag,
  packTermios2,
  rawTermios2,
  termiosBaud,
  unpackTermios2,
  VMIN,
  VTIME,
  withBaud,
} from "../core/io/serial/linux_abi.ts";
import {
  DARWIN_TERMIOS_SIZE,
  DARWIN_VMIN,
  DARWIN_VTIME,
  DarwinCflag,
  darwinFdIsSet,
  darwinFdSet,
  DarwinIoctl,
  darwinIoctlParameters,
  darwinRawTermios,
  darwinTimeval,
  packDarwinTermios,
  unpackDarwinTermios,
} from "../core/io/serial/darwin.ts";
import {
  commTimeouts,
  DCB_SIZE,
  DcbFlag,
  dcbWithBaud,
  rawDcb,
  unpackDcb,
  wideString,
  windowsDevicePath,
} from "../core/io/serial/windows.ts";

const linux = Deno.build.os === "linux";

/** Read from the master until `n` bytes have come. */
async function masterRead(pty: Pty, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const ev = await pty.next();
    if (ev === "closed" || ev === "disconnected") throw new Error(`pty ${ev} after ${got} bytes`);
    if (ev === "data") {
      const chunk = pty.read(n - got);
      out.set(chunk, got);
      got += chunk.length;
    }
  }
  return out;
}

async function linkRead(link: { read(max: number, ms: number): Promise<Uint8Array> }, n: number) {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const chunk = await link.read(n - got, 5000);
    if (chunk.length === 0) throw new Error(`timeout after ${got} of ${n} bytes`);
    out.set(chunk, got);
    got += chunk.length;
  }
  return out;
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

for (const baud of [115200, 2_000_000]) {
  Deno.test({
    name: `serial: round trip over a PTY at ${baud} baud, rate visible on the master`,
    ignore: !linux,
    fn: async () => {
      const pty = Pty.open();
      const link = await openSerial(pty.path, { baud });
      try {
        assert.equal(link.baud, baud);
        assert.equal(pty.clientBaud(), baud);
        const request = pattern(300, baud);
        await link.write(request);
        assert.deepEqual(await masterRead(pty, request.length), request);
        const reply = pattern(5000, baud + 1);
        const sent = pty.write(reply);
        assert.deepEqual(await linkRead(link, reply.length), reply);
        assert.equal(await sent, true);
      } finally {
        await link.close();
        await pty.close();
      }
    },
  });
}

Deno.test({
  name: "serial: setBaud reprograms the tty, including non-standard rates",
  ignore: !linux,
  fn: async () => {
    const pty = Pty.open();
    const link = await openSerial(pty.path);
    try {
      assert.equal(pty.clientBaud(), 115200);
      await link.setBaud(2_000_000);
      assert.equal(pty.clientBaud(), 2_000_000);
      await link.setBaud(1_234_567);
      assert.equal(pty.clientBaud(), 1_234_567);
      assert.equal(link.baud, 1_234_567);
      await assert.rejects(link.setBaud(0), (e: unknown) => e instanceof FlashError && e.code === "USAGE");
    } finally {
      await link.close();
      await pty.close();
    }
  },
});

Deno.test({
  name: "serial: a 256 KiB echo at 2 Mbaud arrives intact",
  ignore: !linux,
  fn: async () => {
    const pty = Pty.open();
    const link = await openSerial(pty.path, { baud: 2_000_000 });
    const data = pattern(256 * 1024, 7);
    const echo = (async () => {
      let got = 0;
      while (got < data.length) {
        const ev = await pty.next();
        if (ev !== "data" && ev !== "connected") throw new Error(`pty ${ev}`);
        const chunk = pty.read(65536);
        got += chunk.length;
        if (!(await pty.write(chunk))) throw new Error("client vanished");
      }
    })();
    try {
      const writing = link.write(data);
      const back = await linkRead(link, data.length);
      await writing;
      await echo;
      assert.deepEqual(back, data);
    } finally {
      await link.close();
      await pty.close();
    }
  },
});

Deno.test({
  name: "serial: a PTY has no modem lines; DTR/RTS and drain are harmless",
  ignore: !linux,
  fn: async () => {
    const pty = Pty.open();
    const link = await openSerial(pty.path);
    try {
      assert.equal(link.hasModemLines, false);
      await link.setSignals({ dtr: true, rts: false });
      await link.write(Uint8Array.of(1, 2, 3));
      await link.drain();
      assert.deepEqual(await masterRead(pty, 3), Uint8Array.of(1, 2, 3));
    } finally {
      await link.close();
      await pty.close();
    }
  },
});

Deno.test({
  name: "serial: read returns nothing on timeout and flushInput drops unread bytes",
  ignore: !linux,
  fn: async () => {
    const pty = Pty.open();
    const link = await openSerial(pty.path);
    try {
      assert.equal((await link.read(10, 1)).length, 0);
      assert.equal(await pty.next(), "connected");
      await pty.write(Uint8Array.of(9, 9, 9));
      assert.deepEqual(await link.read(1, 1000), Uint8Array.of(9));
      await link.flushInput();
      assert.equal((await link.read(10, 1)).length, 0);
    } finally {
      await link.close();
      await pty.close();
    }
  },
});

Deno.test({
  name: "serial: the device vanishing during a read gives LinkClosedError, not a hang",
  ignore: !linux,
  fn: async () => {
    const pty = Pty.open();
    const link = await openSerial(pty.path);
    try {
      const pending = link.read(16, 60_000);
      await pty.close();
      await assert.rejects(
        pending,
        (e: unknown) => e instanceof LinkClosedError && /disconnected/.test(e.message),
      );
      await assert.rejects(link.write(Uint8Array.of(1)), LinkClosedError);
    } finally {
      await link.close();
    }
  },
});

Deno.test({
  name: "serial: close() ends a pending read at once",
  ignore: !linux,
  fn: async () => {
    const pty = Pty.open();
    const link = await openSerial(pty.path);
    try {
      const pending = assert.rejects(link.read(16, 60_000), LinkClosedError);
      await link.close();
      await pending;
      await link.close();
      await assert.rejects(link.read(1, 1), LinkClosedError);
    } finally {
      await pty.close();
    }
  },
});

Deno.test({
  name: "serial: a port another program holds is reported as in use",
  ignore: !linux,
  fn: async () => {
    const pty = Pty.open();
    const first = openLinuxSerial(pty.path);
    try {
      await assert.rejects(
        openSerial(pty.path),
        (e: unknown) =>
          e instanceof FlashError && e.code === "PORT" &&
          e.message === `port ${pty.path} is in use by another program` && e.remedy.length > 0,
      );
    } finally {
      await first.close();
    }
    const again = await openSerial(pty.path);
    await again.close();
    await pty.close();
  },
});

Deno.test({
  name: "serial: missing paths and non-ttys give PORT errors that say what is wrong",
  ignore: !linux,
  fn: async () => {
    await assert.rejects(
      openSerial("/dev/ttyDOESNOTEXIST9"),
      (e: unknown) => e instanceof FlashError && e.code === "PORT" && /no serial port at/.test(e.message),
    );
    await assert.rejects(
      openSerial("/dev/null"),
      (e: unknown) => e instanceof FlashError && e.code === "PORT" && /not a serial port/.test(e.message),
    );
  },
});

Deno.test("serial: termios2 packing matches struct termios2 (44 bytes, speeds at 36/40)", () => {
  const cc = new Uint8Array(19).map((_, i) => i + 1);
  const t = {
    iflag: 0x500,
    oflag: 0x5,
    cflag: 0x1cb2,
    lflag: 0x8a3b,
    line: 0,
    cc,
    ispeed: 38400,
    ospeed: 38400,
  };
  const raw = packTermios2(t);
  assert.equal(raw.length, 44);
  assert.deepEqual(unpackTermios2(raw), t);
  const r = rawTermios2(t, 2_000_000);
  assert.equal(r.cflag & Cflag.CBAUD, Cflag.BOTHER);
  assert.equal(r.cflag & Cflag.CSIZE, Cflag.CS8);
  assert.equal(r.cflag & (Cflag.PARENB | Cflag.CSTOPB | Cflag.CRTSCTS), 0);
  assert.equal(r.lflag & 0x2, 0, "ICANON cleared");
  assert.equal(r.lflag & 0x8, 0, "ECHO cleared");
  assert.equal(r.cc[VMIN], 1);
  assert.equal(r.cc[VTIME], 0);
  const bytes = packTermios2(r);
  const v = new DataView(bytes.buffer);
  assert.equal(v.getUint32(36, true), 2_000_000);
  assert.equal(v.getUint32(40, true), 2_000_000);
  assert.equal(termiosBaud(r), 2_000_000);
  assert.equal(termiosBaud({ ...t, cflag: 0x1002 }), 115200, "legacy B115200");
  assert.equal(termiosBaud(withBaud({ ...t, cflag: 0x1002 }, 1_500_000)), 1_500_000);
});

Deno.test("serial: macOS ioctl numbers follow _IOC and the headers' values", () => {
  assert.equal(DarwinIoctl.TIOCMBIS, 0x8004746cn);
  assert.equal(DarwinIoctl.TIOCMBIC, 0x8004746bn);
  assert.equal(DarwinIoctl.TIOCMGET, 0x4004746an);
  assert.equal(DarwinIoctl.TIOCEXCL, 0x2000740dn);
  assert.equal(DarwinIoctl.TIOCSBRK, 0x2000747bn);
  assert.equal(DarwinIoctl.TIOCCBRK, 0x2000747an);
  assert.equal(DarwinIoctl.IOSSIOSPEED, 0x80085402n);
  assert.equal(DarwinIoctl.FIOCLEX, 0x20006601n);
  assert.deepEqual(darwinIoctlParameters("x86_64"), ["i32", "usize", "buffer"]);
  const arm = darwinIoctlParameters("aarch64");
  assert.equal(arm.length, 9, "x0..x7 filled so the variadic pointer goes on the stack");
  assert.equal(arm[8], "buffer");
});

Deno.test("serial: macOS struct termios packs 64-bit fields, c_cc at 32 and speeds at 56/64", () => {
  const cc = new Uint8Array(20).map((_, i) => 100 + i);
  const t = { iflag: 0x2b02, oflag: 0x3, cflag: 0x4b00, lflag: 0x5cb, cc, ispeed: 9600, ospeed: 9600 };
  const raw = packDarwinTermios(t);
  assert.equal(raw.length, DARWIN_TERMIOS_SIZE);
  const v = new DataView(raw.buffer);
  assert.equal(v.getBigUint64(16, true), 0x4b00n);
  assert.equal(raw[32 + DARWIN_VMIN], 116);
  assert.equal(v.getBigUint64(56, true), 9600n);
  assert.deepEqual(unpackDarwinTermios(raw), t);
  const fast = darwinRawTermios(t, 2_000_000);
  assert.equal(fast.ospeed, 9600, "placeholder; IOSSIOSPEED sets the real rate");
  assert.equal(fast.cflag & DarwinCflag.CSIZE, DarwinCflag.CS8);
  assert.equal(fast.cflag & (DarwinCflag.PARENB | DarwinCflag.CCTS_OFLOW | DarwinCflag.CRTS_IFLOW), 0);
  assert.equal(fast.cc[DARWIN_VMIN], 1);
  assert.equal(fast.cc[DARWIN_VTIME], 0);
  assert.equal(fast.lflag & 0x100, 0, "ICANON cleared");
  assert.equal(darwinRawTermios(t, 115200).ospeed, 115200);
});

Deno.test("serial: macOS fd_set and timeval", () => {
  const set = darwinFdSet([3, 33, 1023]);
  assert.equal(set.length, 128);
  assert.equal(set[0], 0b1000);
  assert.equal(set[4], 0b10);
  assert.equal(set[127], 0x80);
  assert.ok(darwinFdIsSet(set, 33));
  assert.ok(!darwinFdIsSet(set, 32));
  assert.throws(() => darwinFdSet([1024]), RangeError);
  const tv = new DataView(darwinTimeval(2500).buffer);
  assert.equal(tv.getBigInt64(0, true), 2n);
  assert.equal(tv.getInt32(8, true), 500_000);
});

Deno.test("serial: Windows DCB is raw 8N1 with DTR/RTS enabled, reserved fields kept", () => {
  const current = new Uint8Array(DCB_SIZE);
  const v = new DataView(current.buffer);
  v.setUint32(0, DCB_SIZE, true);
  v.setUint32(4, 9600, true);
  v.setUint32(8, 0xffffffff, true);
  v.setUint16(14, 2048, true);
  v.setUint8(21, 0x11);
  v.setUint8(22, 0x13);
  const raw = rawDcb(current, 2_000_000);
  const d = unpackDcb(raw);
  assert.equal(d.baud, 2_000_000);
  assert.equal(d.byteSize, 8);
  assert.equal(d.parity, 0);
  assert.equal(d.stopBits, 0);
  assert.equal(
    d.flags & 0x7fff,
    DcbFlag.fBinary | (1 << DcbFlag.fDtrControlShift) | (1 << DcbFlag.fRtsControlShift),
  );
  assert.equal(d.flags >>> 15, 0x1ffff, "fDummy2 untouched");
  const out = new DataView(raw.buffer);
  assert.equal(out.getUint16(14, true), 2048);
  assert.equal(out.getUint8(21), 0x11);
  assert.equal(out.getUint8(22), 0x13);
  assert.equal(unpackDcb(dcbWithBaud(raw, 921600)).baud, 921600);
  assert.equal(unpackDcb(dcbWithBaud(raw, 921600)).flags, d.flags);
});

Deno.test("serial: Windows timeouts, device path and wide strings", () => {
  const t = new DataView(commTimeouts(25, 115200).buffer);
  assert.equal(t.getUint32(0, true), 0xffffffff);
  assert.equal(t.getUint32(4, true), 0xffffffff);
  assert.equal(t.getUint32(8, true), 25);
  assert.equal(t.getUint32(12, true), 2);
  assert.equal(windowsDevicePath("COM12"), "\\\\.\\COM12");
  assert.equal(windowsDevicePath("\\\\.\\COM3"), "\\\\.\\COM3");
  assert.deepEqual(wideString("C1"), Uint8Array.of(0x43, 0, 0x31, 0, 0, 0));
});
