import assert from "node:assert/strict";
import fc from "fast-check";
import { FlashError } from "../core/errors.ts";
import { Ch341aSpi, planCh341, reverseBits } from "../core/io/ch341a.ts";
import { PINS_IDLE } from "../core/io/ch341a_protocol.ts";
import type { SpiStep } from "../core/io/spi.ts";
import { findCh341a, type UsbDeviceLike } from "../core/io/usb.ts";
import { createVirtualCh341a } from "../emulator/ch341a.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
const pad32 = (...bytes: number[]) => {
  const p = new Uint8Array(32);
  p.set(bytes);
  return p;
};
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

Deno.test("ch341a: bit reversal matches docs/spi-ch341.md A.7's table", () => {
  const table: [number, number][] = [
    [0xd2, 0x4b],
    [0x9f, 0xf9],
    [0x03, 0xc0],
    [0x05, 0xa0],
    [0x06, 0x60],
    [0x02, 0x40],
    [0x20, 0x04],
    [0x01, 0x80],
    [0x35, 0xac],
    [0x31, 0x8c],
    [0x15, 0xa8],
    [0xc7, 0xe3],
    [0x04, 0x20],
  ];
  for (const [b, r] of table) assert.equal(reverseBits(b), r, b.toString(16));
  assert.deepEqual([0x1c, 0x70, 0x15].map(reverseBits), [0x38, 0x0e, 0xa8], "EN25QH16B ID on the wire");
});

Deno.test("ch341a: JEDEC read is a 37-byte OUT (CS packet + A8 F9 FF FF FF), then CS high", () => {
  const plan = planCh341([{ frame: { out: Uint8Array.of(0x9f), read: 3 } }], PINS_IDLE);
  assert.equal(plan.transfers.length, 2);
  assert.equal(plan.transfers[0].length, 37);
  assert.deepEqual(
    plan.transfers[0],
    cat(pad32(0xab, 0xb6, 0x20), Uint8Array.of(0xa8, 0xf9, 0xff, 0xff, 0xff)),
  );
  assert.equal(hex(plan.transfers[1]), "ab b7 20");
  assert.deepEqual(plan.inPackets, [4]);
});

Deno.test("ch341a: a 4 KiB read is flashrom's 4265-byte OUT, or one OUT when padded", () => {
  const read = { out: Uint8Array.of(0x03, 0x01, 0x20, 0x00), read: 4096 };
  const plan = planCh341([{ frame: read }], PINS_IDLE);
  assert.equal(plan.transfers[0].length, 4265);
  assert.equal(plan.inPackets.length, 133);
  assert.deepEqual(plan.transfers[0].subarray(32, 37), Uint8Array.of(0xa8, 0xc0, 0x80, 0x04, 0x00));
  for (let p = 0; p < 132; p++) assert.equal(plan.transfers[0][32 + p * 32], 0xa8, `packet ${p}`);
  assert.equal(plan.transfers.length, 2);

  const tolerant = planCh341([{ frame: { ...read, tolerant: true } }], PINS_IDLE);
  assert.equal(tolerant.transfers.length, 1, "≤2 OUT transfers per 4 KiB read (issue 7): here one");
  assert.equal(tolerant.frames[0].clocked, 133 * 31);
});

Deno.test("ch341a: CEN pulse and entry patterns B3 / B7 B6 / A8 4B… (docs/spi-ch341.md B.5)", () => {
  assert.equal(hex(planCh341([{ cen: "low" }], PINS_IDLE).transfers[0]), "ab b3 20");
  const d2 = new Uint8Array(279).fill(0xd2);
  const plan = planCh341([{ cen: "high" }, { frame: { out: d2 } }], PINS_IDLE & ~0x04);
  assert.equal(plan.transfers.length, 1, "release and the D2 stream in one transfer");
  const t = plan.transfers[0];
  assert.deepEqual(t.subarray(0, 32), pad32(0xab, 0xb7, 0xb6, 0x20));
  for (let p = 1; p <= 9; p++) {
    assert.equal(t[p * 32], 0xa8);
    assert.ok(t.subarray(p * 32 + 1, p * 32 + 32).every((b) => b === 0x4b));
  }
  assert.equal(hex(t.subarray(320)), "ab b7 20");
  const delayed = planCh341([{ cen: "high" }, { delayUs: 100 }, { frame: { out: d2 } }], 0x33);
  assert.equal(hex(delayed.transfers[0].subarray(0, 6)), "ab b7 ff e5 b6 20", "C0|63, C0|37");
});

Deno.test("ch341a: consecutive frames raise CS with fillers between", () => {
  const plan = planCh341([
    { frame: { out: Uint8Array.of(0x05), read: 1, tolerant: true } },
    { frame: { out: Uint8Array.of(0x35), read: 1, tolerant: true } },
  ], PINS_IDLE);
  assert.equal(plan.transfers.length, 1);
  const t = plan.transfers[0];
  assert.equal(hex(t.subarray(64, 70)), "ab b7 b7 b7 b6 20");
  assert.equal(hex(t.subarray(128)), "ab b7 20");
});

Deno.test("ch341a: CS changes never disturb CEN, and no line is left undriven (property)", () => {
  const step = fc.oneof(
    fc.record({ cen: fc.constantFrom("low" as const, "high" as const) }),
    fc.record({ delayUs: fc.integer({ min: 1, max: 200 }) }),
    fc.record({
      frame: fc.record({
        out: fc.uint8Array({ minLength: 1, maxLength: 80 }),
        read: fc.integer({ min: 0, max: 70 }),
        tolerant: fc.boolean(),
      }),
    }),
  );
  const uioOuts = (plan: { transfers: Uint8Array[] }) => {
    const outs: number[] = [];
    for (const t of plan.transfers) {
      for (let o = 0; o < t.length; o += 32) {
        if (t[o] !== 0xab) continue;
        for (const s of t.subarray(o + 1, o + 32)) {
          if (s === 0x20) break;
          if ((s & 0xc0) === 0x80) outs.push(s & 0x3f);
        }
      }
    }
    return outs;
  };
  fc.assert(fc.property(fc.array(step, { maxLength: 12 }), (raw) => {
    const steps = raw as SpiStep[];
    let pins = PINS_IDLE;
    for (const s of steps) {
      const plan = planCh341([s], pins);
      const cen = "cen" in s ? s.cen === "high" : (pins & 0x04) !== 0;
      for (const v of uioOuts(plan)) {
        assert.equal((v & 0x04) !== 0, cen, "CEN only changes on a cen step");
        assert.equal(v & 0x3a, 0x32, "D1, D4, MOSI high, SCK low");
      }
      assert.equal(plan.pins & 0x01, 1, "CS high after every step");
      pins = plan.pins;
    }
    const whole = planCh341(steps, PINS_IDLE);
    assert.equal(whole.pins, pins);
    for (const t of whole.transfers.slice(0, -1)) {
      const lastPacket = t.subarray(Math.floor((t.length - 1) / 32) * 32);
      assert.ok(t.length % 32 === 0 || lastPacket[0] === 0xa8, "only an A8 packet may end a transfer short");
    }
  }));
});

Deno.test("ch341a: open sends AA 61 00 and AB B7 7F 20; JEDEC through the virtual programmer", async () => {
  const rig = createVirtualCh341a({ flashId: [0xeb, 0x60, 0x15], entry: false });
  const outs: string[] = [];
  const dev = rig.device;
  const orig = dev.transferOut.bind(dev);
  dev.transferOut = (ep, data) => {
    outs.push(hex(data));
    return orig(ep, data);
  };
  const spi = await Ch341aSpi.open(dev, { clock: rig.clock });
  assert.deepEqual(outs, ["aa 61 00", "ab b7 7f 20"]);
  const [rx] = await spi.transfer([{ frame: { out: Uint8Array.of(0x9f), read: 3 } }]);
  assert.deepEqual(rx, Uint8Array.of(0xff, 0xeb, 0x60, 0x15));
  assert.equal(spi.stats.outTransfers, 4);
  assert.equal(spi.stats.inTransfers, 1);
  await spi.close();
  assert.equal(dev.opened, false);
  await assert.rejects(spi.transfer([{ cen: "low" }]), FlashError);
});

Deno.test("ch341a: virtual device wires D2 to CEN and D0 to CS", async () => {
  const rig = createVirtualCh341a();
  const spi = await Ch341aSpi.open(rig.device, { clock: rig.clock });
  await spi.transfer([{ cen: "low" }]);
  assert.equal(rig.chip!.stateAt(rig.clock.now()), "reset");
  assert.equal(rig.device.pinLevels & 0x05, 0x01, "CEN low, CS high");
  await spi.transfer([{ cen: "high" }]);
  assert.equal(rig.chip!.attempts, 1);
  assert.equal(rig.device.pinLevels, 0x37);
});

Deno.test("ch341a: findCh341a turns every USB failure into one USB error with the remedy", async () => {
  const noBus = () => Promise.reject(new Error("/sys/bus/usb/devices/ not found"));
  const err = await findCh341a(0, noBus).catch((e) => e);
  assert.ok(err instanceof FlashError);
  assert.equal(err.code, "USB");
  assert.match(err.message, /no CH341A \(1a86:5512\) found \(this machine has no USB bus\)/);
  assert.match(err.remedy, /jumper is in the I2C\/SPI position.*udev rule.*Zadig.*cable/);

  const none = () =>
    Promise.resolve({
      usb: { getDevices: () => Promise.resolve([{ vendorId: 0x1a86, productId: 0x5523 }]) },
    });
  const e2 = await findCh341a(0, none).catch((e) => e);
  assert.equal(e2.code, "USB");
  assert.equal(e2.message, "no CH341A (1a86:5512) found");

  const a = createVirtualCh341a().device;
  const b = createVirtualCh341a().device;
  const two = () =>
    Promise.resolve({ usb: { getDevices: () => Promise.resolve([a, b] as UsbDeviceLike[]) } });
  assert.equal(await findCh341a(1, two), b);
  const e3 = await findCh341a(2, two).catch((e) => e);
  assert.match(e3.message, /#2 found \(only 2 attached\)/);
});

Deno.test("ch341a: an unplugged programmer fails with a USB error", async () => {
  const rig = createVirtualCh341a();
  const spi = await Ch341aSpi.open(rig.device, { clock: rig.clock });
  rig.device.unplugged = true;
  const e = await spi.transfer([{ frame: { out: Uint8Array.of(0x9f), read: 3 } }]).catch((x) => x);
  assert.ok(e instanceof FlashError);
  assert.equal(e.code, "USB");
});
