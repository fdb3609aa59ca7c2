import assert from "node:assert/strict";
import { FlashError } from "../core/errors.ts";
import { Ch341aSpi } from "../core/io/ch341a.ts";
import {
  GPIO_V2_GET_LINE_IOCTL,
  GPIO_V2_LINE_SET_VALUES_IOCTL,
  GpioFlag,
  GpioLine,
  LINE_REQUEST_SIZE,
  packLineRequest,
  packLineValues,
  parseGpioSpec,
  requestFd,
} from "../core/io/gpio.ts";
import type { SpiMaster, SpiStep } from "../core/io/spi.ts";
import {
  openSpidev,
  packSpiTransfers,
  planSpidev,
  SPI_IOC_WR_BITS_PER_WORD,
  SPI_IOC_WR_MAX_SPEED_HZ,
  SPI_IOC_WR_MODE,
  spiIocMessage,
} from "../core/io/spidev.ts";
import { SpiNor } from "../core/spi/nor.ts";
import { createVirtualCh341a } from "../emulator/ch341a.ts";
import { NorFlash } from "../emulator/nor.ts";
import { Rng } from "../emulator/rng.ts";

/** `_IOC(dir, type, nr, size)` as <asm-generic/ioctl.h> defines it. */
const ioc = (dir: number, type: number, nr: number, size: number) =>
  ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;

Deno.test("spidev: ioctl numbers", () => {
  assert.equal(SPI_IOC_WR_MODE, ioc(1, 0x6b, 1, 1));
  assert.equal(SPI_IOC_WR_BITS_PER_WORD, ioc(1, 0x6b, 3, 1));
  assert.equal(SPI_IOC_WR_MAX_SPEED_HZ, ioc(1, 0x6b, 4, 4));
  assert.equal(spiIocMessage(1), 0x40206b00);
  assert.equal(spiIocMessage(3), 0x40606b00);
  assert.equal(spiIocMessage(511), ioc(1, 0x6b, 0, 511 * 32));
  assert.throws(() => spiIocMessage(0), RangeError);
  assert.throws(() => spiIocMessage(512), RangeError);
});

Deno.test("spidev: struct spi_ioc_transfer packing", () => {
  const raw = packSpiTransfers([
    {
      tx: 0x1122334455667788n,
      rx: 0x99aabbccddeeff00n,
      len: 4100,
      speedHz: 30000,
      delayUs: 7,
      bitsPerWord: 8,
      csChange: 1,
    },
    { tx: 1n, rx: 2n, len: 3, speedHz: 0, delayUs: 100000, bitsPerWord: 8, csChange: 0 },
  ]);
  assert.equal(raw.length, 64);
  const v = new DataView(raw.buffer);
  assert.equal(v.getBigUint64(0, true), 0x1122334455667788n);
  assert.equal(v.getBigUint64(8, true), 0x99aabbccddeeff00n);
  assert.equal(v.getUint32(16, true), 4100);
  assert.equal(v.getUint32(20, true), 30000);
  assert.equal(v.getUint16(24, true), 7);
  assert.equal(raw[26], 8);
  assert.equal(raw[27], 1);
  assert.deepEqual(raw.subarray(28, 32), new Uint8Array(4), "tx/rx_nbits, word delay, pad zero");
  assert.equal(v.getBigUint64(32, true), 1n);
  assert.equal(v.getUint16(56, true), 0xffff, "delay saturates at u16");
  assert.equal(raw[59], 0);
});

Deno.test("spidev: steps become messages within bufsiz, CEN and long pauses between them", () => {
  const f = (n: number, read = 0): SpiStep => ({ frame: { out: new Uint8Array(n).fill(0xd2), read } });
  const plan = planSpidev([
    { cen: "low" },
    { delayUs: 50 },
    { cen: "high" },
    f(250),
    { delayUs: 5 },
    f(1, 3),
    f(3000),
    f(1000),
  ], 4096);
  assert.deepEqual(plan.map((a) => a.kind), ["cen", "sleep", "cen", "message", "message"]);
  const m1 = plan[3] as Extract<typeof plan[number], { kind: "message" }>;
  assert.deepEqual(m1.frames.map((x) => [x.mosi.length, x.delayUs, x.frameIndex]), [[250, 5, 0], [4, 0, 1], [
    3000,
    0,
    2,
  ]]);
  assert.deepEqual(Array.from(m1.frames[1].mosi), [0xd2, 0xff, 0xff, 0xff], "read slots send 0xFF");
  const m2 = plan[4] as typeof m1;
  assert.deepEqual(m2.frames.map((x) => x.frameIndex), [3]);
  assert.throws(() => planSpidev([f(5000)], 4096), FlashError);
});

Deno.test("gpio: struct gpio_v2_line_request packing and ioctl numbers", () => {
  assert.equal(GPIO_V2_GET_LINE_IOCTL, ioc(3, 0xb4, 0x07, LINE_REQUEST_SIZE));
  assert.equal(GPIO_V2_LINE_SET_VALUES_IOCTL, ioc(3, 0xb4, 0x0f, 16));
  const raw = packLineRequest({
    offsets: [17],
    consumer: "bekenlab-cen",
    flags: GpioFlag.OUTPUT | GpioFlag.ACTIVE_LOW,
    output: { bits: 1n, mask: 1n },
  });
  assert.equal(raw.length, 592);
  const v = new DataView(raw.buffer);
  assert.equal(v.getUint32(0, true), 17);
  assert.equal(new TextDecoder().decode(raw.subarray(256, 268)), "bekenlab-cen");
  assert.equal(raw[268], 0, "NUL-terminated");
  assert.equal(v.getBigUint64(288, true), (1n << 3n) | (1n << 1n), "config.flags");
  assert.equal(v.getUint32(296, true), 1, "config.num_attrs");
  assert.equal(v.getUint32(320, true), 2, "attr id OUTPUT_VALUES");
  assert.equal(v.getBigUint64(328, true), 1n, "values");
  assert.equal(v.getBigUint64(336, true), 1n, "mask");
  assert.equal(v.getUint32(560, true), 1, "num_lines");
  assert.equal(requestFd(raw), -1);
  v.setInt32(588, 9, true);
  assert.equal(requestFd(raw), 9);
  assert.deepEqual(Array.from(packLineValues(0n, 1n)), [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => packLineRequest({ offsets: [], consumer: "", flags: 0n }), RangeError);
});

Deno.test("gpio: line specs", () => {
  assert.deepEqual(parseGpioSpec("gpiochip0:17"), { chip: "/dev/gpiochip0", line: 17, invert: false });
  assert.deepEqual(parseGpioSpec("/dev/gpiochip1:4:inverted"), {
    chip: "/dev/gpiochip1",
    line: 4,
    invert: true,
  });
  assert.throws(() => parseGpioSpec("17"), FlashError);
});

Deno.test("spi nor: reads respect an adapter's frame limit (spidev bufsiz)", async () => {
  const nor = new NorFlash();
  nor.restore({ ...nor.snapshot(), data: new Rng(5).fill(new Uint8Array(nor.size)) });
  const rig = createVirtualCh341a({ nor, entry: false });
  const inner = await Ch341aSpi.open(rig.device, { clock: rig.clock });
  const frames: number[] = [];
  const limited: SpiMaster = {
    name: "limited",
    clock: inner.clock,
    stats: inner.stats,
    maxFrame: 1024,
    transfer(steps) {
      for (const s of steps) if ("frame" in s) frames.push(s.frame.out.length + (s.frame.read ?? 0));
      return inner.transfer(steps);
    },
    close: () => inner.close(),
  };
  const spiNor = await SpiNor.identify(limited);
  const data = await spiNor.read(0x1000, 5000);
  assert.deepEqual(data, nor.read(0x1000, 5000));
  assert.ok(frames.every((n) => n <= 1024), `frames ${frames}`);
});

Deno.test("spidev/gpio: a missing device is one PORT error", () => {
  const e1 = (() => {
    try {
      openSpidev("/dev/spidev-does-not-exist.0");
    } catch (e) {
      return e;
    }
  })() as FlashError;
  assert.ok(e1 instanceof FlashError);
  assert.equal(e1.code, "PORT");
  const e2 = (() => {
    try {
      GpioLine.open(parseGpioSpec("gpiochip-none:1"));
    } catch (e) {
      return e;
    }
  })() as FlashError;
  assert.equal(e2.code, "PORT");
});
