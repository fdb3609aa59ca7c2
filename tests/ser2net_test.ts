/**
 * The RFC 2217 client against the real thing: Debian's ser2net 4.x serving the emulator's PTY
 * through a `telnet(rfc2217)` accepter on loopback. ser2net on a PTY carries baud changes but
 * confirms no DTR/RTS change, so the harness resets the chip through the emulator's control
 * socket before each job. Without ser2net (`apt-get install -y ser2net`) these tests are
 * ignored, and their name says why.
 */
import assert from "node:assert/strict";
import { chipById } from "../core/chips/profiles.ts";
import { main as flashMain } from "../cli/flash.ts";
import { main as hilMain } from "../cli/hil.ts";
import type { CliIO } from "../cli/output.ts";
import { serveControl } from "../emulator/control.ts";
import { defaultImage } from "../emulator/image.ts";
import { servePty } from "../emulator/serve.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { assertSameBytes } from "./support/bytes.ts";

async function ser2netVersion(): Promise<string | null> {
  if (Deno.build.os !== "linux") return null;
  try {
    const out = await new Deno.Command("ser2net", { args: ["-v"], stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return /ser2net version (\d+\.\d+[.\d]*)/.exec(text)?.[1] ?? null;
  } catch {
    return null;
  }
}

const version = await ser2netVersion();
const major = version ? Number(version.split(".")[0]) : 0;
const skipWhy = Deno.build.os !== "linux"
  ? "ignored: needs Linux PTYs"
  : !version
  ? "ignored: ser2net is not installed (apt-get install -y ser2net)"
  : major < 4
  ? `ignored: ser2net ${version} is older than 4.x (no YAML config)`
  : null;

function captureIO(): CliIO & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => out.push(t), stderr: (t) => err.push(t), stderrIsTTY: false };
}

/** Seeded bytes with every `ffEvery`-th one 0xFF (telnet doubles those both ways). */
function pattern(n: number, seed: number, ffEvery: number): Uint8Array {
  let x = seed >>> 0;
  return Uint8Array.from({ length: n }, (_, i) => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return i % ffEvery === 0 ? 0xff : x >>> 24;
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

/** Send one control request and return the answer line. */
async function control(path: string, request: object): Promise<Record<string, unknown>> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode(JSON.stringify(request) + "\n"));
    const buf = new Uint8Array(512);
    let text = "";
    while (!text.includes("\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return JSON.parse(text);
  } finally {
    conn.close();
  }
}

/** Start ser2net on `port` serving `pty`; resolves once it accepts connections. */
async function startSer2net(dir: string, port: number, pty: string): Promise<Deno.ChildProcess> {
  const config = `${dir}/ser2net.yaml`;
  await Deno.writeTextFile(
    config,
    [
      "%YAML 1.1",
      "---",
      "connection: &emulated",
      `  accepter: telnet(rfc2217),tcp,127.0.0.1,${port}`,
      `  connector: serialdev,${pty},115200n81,local`,
      "  options:",
      "    kickolduser: true",
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("ser2net", {
    args: ["-n", "-u", "-c", config, "-P", `${dir}/ser2net.pid`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      // let ser2net notice that probe went away before the real client comes
      await sleep(100);
      return child;
    } catch {
      await sleep(50);
    }
  }
  child.kill("SIGKILL");
  await child.status;
  throw new Error(`ser2net did not listen on 127.0.0.1:${port} within 5 s`);
}

Deno.test({
  name: `ser2net ${version ?? ""} serving the emulator's PTY over RFC 2217${skipWhy ? ` (${skipWhy})` : ""}`,
  ignore: skipWhy !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const profile = chipById("bk7231n")!;
    const flash = defaultImage(profile, profile.flashSize);
    // an application area with plenty of 0xFF (doubled by telnet both ways) and other bytes
    flash.set(
      pattern(0x20000, 1, 5),
      0x11000,
    );
    const virtual = await createVirtualChip({ chip: "bk7231n", image: flash });
    const emuLog: string[] = [];
    // pace "none": replies leave at once, but a byte at the wrong rate is still garbled, so the
    // baud changes ser2net applies to the PTY are still checked
    const server = servePty(virtual.chip, { pace: "none", log: (l) => emuLog.push(l) });
    const dir = await Deno.makeTempDir();
    const ctl = await serveControl(`${dir}/control.sock`, { device: virtual.chip, now: () => server.now() });
    const port = freePort();
    const url = `rfc2217://127.0.0.1:${port}`;
    let ser2net = await startSer2net(dir, port, server.address);
    const job = async (args: string[]) => {
      assert.deepEqual(await control(ctl.path, { reset: true }), { ok: true, dtr: false, rts: false });
      const io = captureIO();
      const code = await flashMain(["--port", url, ...args], {
        io,
        now: () => new Date(Date.UTC(2026, 0, 1)),
      });
      return { code, out: io.out.join(""), err: io.err.join("") };
    };
    try {
      await t.step("chip-info", async () => {
        const r = await job(["chip-info", "--json"]);
        assert.equal(r.code, 0, r.err);
        const info = JSON.parse(r.out);
        assert.equal(info.chip, "BK7231N");
        assert.equal(info.flashId, "eb6015");
      });

      await t.step("a 2 Mbaud backup of the whole flash, verified against the chip", async () => {
        const r = await job(["--baud", "2000000", "read-flash", "--out", `${dir}/backup.bin`]);
        assert.equal(r.code, 0, r.err);
        assert.match(r.err, /2000000 baud/);
        assertSameBytes(
          await Deno.readFile(`${dir}/backup.bin`),
          virtual.nor.read(0, profile.flashSize),
          "backup",
        );
        assert.ok(!emuLog.some((l) => l.includes("garbled")), emuLog.join("\n"));
      });

      await t.step("a write and a verify", async () => {
        const image = pattern(0x9000, 2, 3);
        await Deno.writeFile(`${dir}/app.bin`, image);
        const w = await job([
          "--baud",
          "2000000",
          // the whole-flash backup a write takes first is the read of the step before; skipped
          // here to keep the suite short
          "--no-backup",
          "write-flash",
          `${dir}/app.bin`,
          "--addr",
          "0x11000",
        ]);
        assert.equal(w.code, 0, w.err);
        assertSameBytes(virtual.nor.read(0x11000, image.length), image, "flash after the write");
        const v = await job(["--baud", "2000000", "verify-flash", `${dir}/app.bin`, "--addr", "0x11000"]);
        assert.equal(v.code, 0, v.err);
      });

      await t.step(
        "a server without modem control: said once, no hang, the harness's reset gets through",
        async () => {
          // CEN held low through the control socket: the chip stays off while the client tries
          assert.equal((await control(ctl.path, { rts: true })).rts, true);
          const io = captureIO();
          const started = flashMain(["--port", url, "chip-info"], { io });
          await sleep(2500);
          assert.equal((await control(ctl.path, { rts: false })).rts, false);
          const code = await started;
          const err = io.err.join("");
          assert.equal(code, 0, err);
          assert.equal(err.match(/resets through DTR\/RTS are not possible there/g)?.length, 1, err);
        },
      );

      await t.step(
        "hil --target rfc2217://… --power-cycle-cmd (a labgrid place: NetworkSerialPort + power)",
        async () => {
          // the power command of this bench: a reset through the emulator's control socket
          await Deno.writeTextFile(
            `${dir}/power.ts`,
            `const c = await Deno.connect({ transport: "unix", path: ${JSON.stringify(ctl.path)} });\n` +
              `await c.write(new TextEncoder().encode('{"reset":true}\\n'));\n` +
              "await c.read(new Uint8Array(256));\nc.close();\n",
          );
          const powerCmd = `'${Deno.execPath()}' run -A '${dir}/power.ts'`;
          await control(ctl.path, { reset: true });
          const io = captureIO();
          const code = await hilMain([
            "--target",
            url,
            "--chip",
            "bk7231n",
            "--only",
            "detect,power-cycle",
            "--power-cycle-cmd",
            powerCmd,
            "--json",
          ], { io });
          const report = JSON.parse(io.out.join(""));
          assert.equal(code, 0, io.err.join("") + io.out.join(""));
          assert.deepEqual(
            report.scenarios.map((r: { id: string; status: string }) => `${r.id}:${r.status}`),
            ["detect:passed", "power-cycle:passed"],
            JSON.stringify(report),
          );
        },
      );

      await t.step("killing ser2net mid-read ends the job with the disconnected error", async () => {
        const started = job(["--baud", "115200", "read-flash", "--out", `${dir}/cut.bin`]);
        await sleep(1500);
        ser2net.kill("SIGKILL");
        await ser2net.status;
        const r = await started;
        assert.equal(r.code, 5, r.err);
        assert.match(r.err, /disconnected: rfc2217:\/\/127\.0\.0\.1:\d+/);
        ser2net = await startSer2net(dir, port, server.address);
      });
    } finally {
      try {
        ser2net.kill("SIGKILL");
      } catch {
        // gone already
      }
      await ser2net.status;
      await ctl.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
