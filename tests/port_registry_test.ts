import assert from "node:assert/strict";
import { crc32 } from "../core/crc.ts";
import { FlashError } from "../core/errors.ts";
import { Ch341aSpi } from "../core/io/ch341a.ts";
import { isSpiPort, isVirtualPort, parsePortSpec, type PortSpec } from "../core/io/port_spec.ts";
import { openPort, PORT_KINDS, portKind, type PortOpener } from "../core/io/registry.ts";
import type { SpiMaster } from "../core/io/spi.ts";
import { createVirtualCh341a } from "../emulator/ch341a.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { main } from "../cli/hil.ts";
import type { CliIO } from "../cli/output.ts";

function captureIO(): CliIO & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => out.push(t), stderr: (t) => err.push(t), stderrIsTTY: false };
}

const EXAMPLES: Record<PortSpec["kind"], string | undefined> = {
  auto: undefined,
  virtual: "virtual:bk7231n",
  "ch341a-virtual": "ch341a:virtual:bk7231n",
  serial: "/dev/ttyUSB0",
  tcp: "tcp://127.0.0.1:7231",
  rfc2217: "rfc2217://127.0.0.1:4001",
  ch341a: "ch341a:1",
  spidev: "spidev:/dev/spidev0.0",
};

Deno.test("port registry: one row per port kind, and the spec helpers follow it", () => {
  assert.deepEqual(PORT_KINDS.map((k) => k.kind).sort(), Object.keys(EXAMPLES).sort());
  for (const [kind, text] of Object.entries(EXAMPLES)) {
    const spec = parsePortSpec(text);
    assert.equal(spec.kind, kind);
    const row = portKind(spec);
    assert.equal(isSpiPort(spec), row.bus === "spi", kind);
    assert.equal(isVirtualPort(spec), row.virtual, kind);
  }
  assert.deepEqual(
    PORT_KINDS.filter((k) => k.bus === "spi").map((k) => k.kind).sort(),
    ["ch341a", "ch341a-virtual", "spidev"],
  );
  assert.equal(portKind(parsePortSpec("spidev:/dev/spidev0.0")).power, "gpio-cen");
  assert.equal(portKind(parsePortSpec("ch341a")).power, "ch341a-d2");
});

Deno.test("port registry: virtual kinds need the emulator; spidev for Beken entry needs --cen", async () => {
  await assert.rejects(
    () => openPort(parsePortSpec("virtual:bk7231n"), { text: "virtual:bk7231n" }),
    (e) => e instanceof FlashError && e.code === "UNSUPPORTED",
  );
  await assert.rejects(
    () =>
      openPort(parsePortSpec("spidev:/dev/spidev0.0"), {
        text: "spidev:/dev/spidev0.0",
        spidev: { cenRequired: true },
      }),
    (e) => e instanceof FlashError && e.code === "USAGE" && /CEN/.test(e.message),
  );
});

/**
 * A fake spidev: a master with spidev's frame limit over a virtual CH341A wired to a virtual
 * chip, standing in for `/dev/spidev0.0` with its CEN line.
 */
async function fakeSpidev(chip: string) {
  const v = await createVirtualChip({ chip });
  const rig = createVirtualCh341a({ nor: v.nor, clock: v.clock, entry: {}, seed: 1 });
  const seen = { opens: 0, frames: 0, largest: 0, cenSteps: 0 };
  const opener: PortOpener = (spec) => {
    assert.equal(spec.kind, "spidev");
    return Promise.resolve({
      bus: "spi",
      via: "master",
      name: "spidev:/dev/spidev0.0",
      async open(): Promise<SpiMaster> {
        seen.opens++;
        const inner = await Ch341aSpi.open(rig.device, { clock: rig.clock, name: "fake spidev" });
        return {
          name: "spidev:/dev/spidev0.0",
          clock: inner.clock,
          stats: inner.stats,
          maxFrame: 4096,
          transfer(steps) {
            for (const s of steps) {
              if ("cen" in s) seen.cenSteps++;
              if (!("frame" in s)) continue;
              const n = s.frame.out.length + (s.frame.read ?? 0);
              assert.ok(n <= 4096, `a frame of ${n} bytes exceeds the fake spidev's buffer`);
              seen.frames++;
              seen.largest = Math.max(seen.largest, n);
            }
            return inner.transfer(steps);
          },
          close: () => inner.close(),
        };
      },
    });
  };
  return { v, opener, seen };
}

Deno.test("hil --target spidev: … --cen …: the runner drives spidev, power cycles through the CEN line", async () => {
  const { v, opener, seen } = await fakeSpidev("bk7231n");
  const before = crc32(v.nor.read(0, v.nor.size));
  const io = captureIO();
  const code = await main(
    ["--target", "spidev:/dev/spidev0.0", "--cen", "gpiochip0:17", "--chip", "bk7231n", "--json"],
    { io, openers: { spidev: opener } },
  );
  assert.equal(code, 0, io.err.join(""));
  const report = JSON.parse(io.out.join(""));
  assert.equal(report.target, "spidev:/dev/spidev0.0");
  assert.equal(report.failed, 0);
  const byId = new Map(report.scenarios.map((s: { id: string }) => [s.id, s]));
  const status = (id: string) => (byId.get(id) as { status: string; notes?: string[] } | undefined)?.status;
  assert.equal(status("detect"), "passed");
  assert.equal(status("full-backup"), "passed");
  assert.equal(status("power-cycle"), "passed", JSON.stringify(byId.get("power-cycle")));
  assert.match(
    JSON.stringify(byId.get("power-cycle")),
    /GPIO gpiochip0:17 → CEN on spidev:\/dev\/spidev0\.0/,
  );
  assert.ok(seen.opens >= 3, `opened ${seen.opens} times`);
  assert.ok(seen.cenSteps > 0 && seen.frames > 0);
  assert.ok(seen.largest <= 4096);
  assert.equal(crc32(v.nor.read(0, v.nor.size)), before);
});

Deno.test("hil --target spidev: without --cen, or with --record, is refused before anything is opened", async () => {
  const { opener, seen } = await fakeSpidev("bk7231n");
  const io = captureIO();
  assert.equal(
    await main(["--target", "spidev:/dev/spidev0.0", "--chip", "bk7231n"], {
      io,
      openers: { spidev: opener },
    }),
    2,
  );
  assert.match(io.err.join(""), /CEN/);
  const dir = await Deno.makeTempDir();
  try {
    const io2 = captureIO();
    const code = await main(
      [
        "--target",
        "spidev:/dev/spidev0.0",
        "--cen",
        "gpiochip0:17",
        "--chip",
        "bk7231n",
        "--record",
        `${dir}/t.jsonl`,
      ],
      { io: io2, openers: { spidev: opener } },
    );
    assert.notEqual(code, 0);
    assert.match(io2.err.join(""), /cannot record an spidev port/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(seen.opens, 0);
});
