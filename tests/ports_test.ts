import assert from "node:assert/strict";
import { choosePort, describePort, listPorts, parseSerialComm, type PortInfo } from "../core/io/ports.ts";
import { FlashError } from "../core/errors.ts";

/** Build a small sysfs + /dev tree the way Linux 6.x lays it out. */
async function fakeTree(): Promise<{ root: string; sys: string; dev: string }> {
  const root = await Deno.makeTempDir({ prefix: "bekenlab-sysfs-" });
  const sys = `${root}/sys`;
  const dev = `${root}/dev`;
  const dir = (p: string) => Deno.mkdir(`${root}/${p}`, { recursive: true });
  const file = (p: string, text: string) => Deno.writeTextFile(`${root}/${p}`, `${text}\n`);
  const link = async (p: string, target: string) => {
    await dir(p.slice(0, p.lastIndexOf("/")));
    await Deno.symlink(target, `${root}/${p}`);
  };
  for (const bus of ["usb", "usb-serial", "pnp", "platform", "serial-base"]) await dir(`sys/bus/${bus}`);
  for (const drv of ["usb/drivers/ch341", "usb/drivers/cdc_acm", "usb-serial/drivers/ch341-uart"]) {
    await dir(`sys/bus/${drv}`);
  }
  await dir("sys/bus/pnp/drivers/serial");
  await dir("sys/bus/platform/drivers/serial8250");
  await dir("sys/bus/serial-base/drivers/port");

  // CH340 on usb1 port 2: tty → usb-serial port → interface 1-2:1.0 → device 1-2
  const ch340 = "sys/devices/pci0000:00/0000:00:14.0/usb1/1-2";
  await dir(`${ch340}/1-2:1.0/ttyUSB0`);
  await file(`${ch340}/idVendor`, "1a86");
  await file(`${ch340}/idProduct`, "7523");
  await file(`${ch340}/product`, "USB Serial");
  await file(`${ch340}/1-2:1.0/bInterfaceNumber`, "00");
  await link(`${ch340}/1-2:1.0/subsystem`, "../../../../../../bus/usb");
  await link(`${ch340}/1-2:1.0/ttyUSB0/subsystem`, "../../../../../../../bus/usb-serial");
  await link(`${ch340}/1-2:1.0/ttyUSB0/driver`, "../../../../../../../bus/usb-serial/drivers/ch341-uart");
  await dir("sys/class/tty/ttyUSB0");
  await link(
    "sys/class/tty/ttyUSB0/device",
    `../../../devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/ttyUSB0`,
  );

  // CDC-ACM: tty → interface 1-3:1.2 → device 1-3
  const acm = "sys/devices/pci0000:00/0000:00:14.0/usb1/1-3";
  await dir(`${acm}/1-3:1.2`);
  await file(`${acm}/idVendor`, "303a");
  await file(`${acm}/idProduct`, "1001");
  await file(`${acm}/manufacturer`, "Espressif");
  await file(`${acm}/product`, "USB JTAG/serial debug unit");
  await file(`${acm}/serial`, "A0:B1:C2");
  await file(`${acm}/1-3:1.2/bInterfaceNumber`, "02");
  await link(`${acm}/1-3:1.2/subsystem`, "../../../../../../bus/usb");
  await link(`${acm}/1-3:1.2/driver`, "../../../../../../bus/usb/drivers/cdc_acm");
  await dir("sys/class/tty/ttyACM0");
  await link("sys/class/tty/ttyACM0/device", "../../../devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.2");

  // A real motherboard UART: tty → serial-base port → serial-base ctrl → pnp device
  await dir("sys/devices/pnp0/00:01/00:01:0/00:01:0.0");
  await link("sys/devices/pnp0/00:01/subsystem", "../../../bus/pnp");
  await link("sys/devices/pnp0/00:01/driver", "../../../bus/pnp/drivers/serial");
  await link("sys/devices/pnp0/00:01/00:01:0/subsystem", "../../../../bus/serial-base");
  await link("sys/devices/pnp0/00:01/00:01:0/00:01:0.0/subsystem", "../../../../../bus/serial-base");
  await dir("sys/class/tty/ttyS0");
  await link("sys/class/tty/ttyS0/device", "../../../devices/pnp0/00:01/00:01:0/00:01:0.0");

  // An 8250 placeholder with no UART behind it
  const ph = "sys/devices/platform/serial8250";
  await dir(`${ph}/serial8250:0/serial8250:0.1`);
  await link(`${ph}/subsystem`, "../../../bus/platform");
  await link(`${ph}/driver`, "../../../bus/platform/drivers/serial8250");
  await link(`${ph}/serial8250:0/subsystem`, "../../../../bus/serial-base");
  await link(`${ph}/serial8250:0/serial8250:0.1/subsystem`, "../../../../../bus/serial-base");
  await dir("sys/class/tty/ttyS1");
  await link(
    "sys/class/tty/ttyS1/device",
    "../../../devices/platform/serial8250/serial8250:0/serial8250:0.1",
  );

  // A virtual console: no device link
  await dir("sys/class/tty/tty0");

  await link("dev/serial/by-id/usb-1a86_USB_Serial-if00-port0", "../../ttyUSB0");
  return { root, sys, dev };
}

Deno.test("ports: sysfs listing finds USB adapters with IDs and by-id links, skips placeholders", async () => {
  const { root, sys, dev } = await fakeTree();
  try {
    const ports = await listPorts({ sysRoot: sys, devRoot: dev, os: "linux" });
    assert.deepEqual(ports.map((p) => p.path), [`${dev}/ttyACM0`, `${dev}/ttyUSB0`, `${dev}/ttyS0`]);
    const [acm, ch340, uart] = ports;
    assert.deepEqual(ch340, {
      path: `${dev}/ttyUSB0`,
      kind: "usb",
      driver: "ch341-uart",
      vid: 0x1a86,
      pid: 0x7523,
      product: "USB Serial",
      interface: 0,
      byId: `${dev}/serial/by-id/usb-1a86_USB_Serial-if00-port0`,
    });
    assert.equal(acm.kind, "usb");
    assert.equal(acm.vid, 0x303a);
    assert.equal(acm.manufacturer, "Espressif");
    assert.equal(acm.serialNumber, "A0:B1:C2");
    assert.equal(acm.interface, 2);
    assert.equal(acm.driver, "cdc_acm");
    assert.equal(acm.byId, undefined);
    assert.deepEqual(uart, { path: `${dev}/ttyS0`, kind: "pnp", driver: "serial" });
    assert.equal(
      describePort(ch340),
      `${dev}/ttyUSB0  1a86:7523  USB Serial  by-id: ${dev}/serial/by-id/usb-1a86_USB_Serial-if00-port0`,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("ports: a missing sysfs lists nothing instead of failing", async () => {
  const root = await Deno.makeTempDir();
  try {
    assert.deepEqual(await listPorts({ sysRoot: `${root}/nope`, devRoot: `${root}/dev`, os: "linux" }), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("ports: macOS lists /dev/cu.* and leaves out Bluetooth and tty.*", async () => {
  const root = await Deno.makeTempDir();
  try {
    for (
      const n of ["cu.usbserial-1410", "tty.usbserial-1410", "cu.Bluetooth-Incoming-Port", "cu.debug-console"]
    ) {
      await Deno.writeTextFile(`${root}/${n}`, "");
    }
    assert.deepEqual(await listPorts({ devRoot: root, os: "darwin" }), [
      { path: `${root}/cu.usbserial-1410`, kind: "usb" },
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("ports: Windows SERIALCOMM registry output", () => {
  const text = [
    "",
    "HKEY_LOCAL_MACHINE\\HARDWARE\\DEVICEMAP\\SERIALCOMM",
    "    \\Device\\Serial0    REG_SZ    COM1",
    "    \\Device\\wchusbser000    REG_SZ    COM7",
    "",
  ].join("\r\n");
  assert.deepEqual(parseSerialComm(text), [
    { path: "COM1", kind: "other", driver: "Serial0" },
    { path: "COM7", kind: "usb", driver: "wchusbser000" },
  ]);
});

const usbA: PortInfo = { path: "/dev/ttyUSB0", kind: "usb", vid: 0x1a86, pid: 0x7523 };
const usbB: PortInfo = { path: "/dev/ttyACM0", kind: "usb", vid: 0x303a, pid: 0x1001 };
const onboard: PortInfo = { path: "/dev/ttyS0", kind: "pnp", driver: "serial" };

Deno.test("ports: choosePort takes the only USB adapter", () => {
  assert.equal(choosePort([onboard, usbA]), usbA);
});

Deno.test("ports: choosePort with several adapters lists them and says how to choose", () => {
  assert.throws(() => choosePort([usbA, usbB, onboard]), (e: unknown) => {
    assert.ok(e instanceof FlashError);
    assert.equal(e.code, "PORT");
    assert.match(e.message, /2 USB serial ports found/);
    assert.ok(e.message.includes("/dev/ttyUSB0  1a86:7523"));
    assert.match(e.message, /\/dev\/ttyACM0/);
    assert.match(e.remedy, /--port <path>/);
    assert.match(e.remedy, /--port virtual:<chip>/);
    return true;
  });
});

Deno.test("ports: choosePort with no adapter names the other ports and the emulator", () => {
  assert.throws(() => choosePort([onboard]), (e: unknown) => {
    assert.ok(e instanceof FlashError);
    assert.match(e.message, /no USB serial adapter found \(other serial ports: \/dev\/ttyS0\)/);
    assert.match(e.remedy, /virtual:bk7231n/);
    return true;
  });
  assert.throws(() => choosePort([]), /no USB serial adapter found$/);
});
