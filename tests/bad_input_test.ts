import assert from "node:assert/strict";
import { main } from "../cli/flash.ts";
import type { ErrorCode } from "../core/errors.ts";
import { openSerial } from "../core/io/serial/mod.ts";
import { Pty } from "../emulator/pty.ts";
import { serveTcp } from "../emulator/serve.ts";
import { decodeState } from "../emulator/state.ts";
import { createVirtualChip } from "../emulator/virtual.ts";

/**
 * The bad-input catalogue (issue 5, item 5): every way a user can get it wrong, run through the
 * CLI's `main`, must end with a non-zero exit, exactly one line of cause and one of remedy (the
 * causes all distinct), and the flash exactly as it was.
 */

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function flash(args: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stderrIsTTY: false },
    now: () => new Date("2026-11-22T02:00:00Z"),
    confirm: () => Promise.resolve(false),
  });
  return { code, stdout, stderr };
}

/** What a case may set up, and must tear down. */
interface Fixture {
  dir: string;
  /** Path of the virtual chip's state file (created for every case). */
  state: string;
  /** Flash bytes that must not change, read after the run. */
  flash?: () => Promise<Uint8Array>;
  close?: () => Promise<void>;
  extra: Record<string, string>;
}

interface Case {
  name: string;
  code: ErrorCode;
  /** Chip of the state file (default bk7231n). */
  chip?: string;
  /** Tune the state file before the run. */
  state?: (state: string) => Promise<void>;
  setup?: (f: Fixture) => Promise<void>;
  args: (f: Fixture) => string[];
}

const V = (
  f: Fixture,
  chip = "bk7231n",
) => ["--port", `virtual:${chip}`, "--state", f.state, "--backup-dir", `${f.dir}/b`];

async function writeImage(f: Fixture, name: string, size: number): Promise<string> {
  const path = `${f.dir}/${name}`;
  await Deno.writeFile(path, new Uint8Array(size).fill(0x5a));
  return path;
}

async function tuneState(
  state: string,
  chip: string,
  opts: { key?: number[]; protect?: number },
): Promise<void> {
  await Deno.remove(state).catch(() => {});
  const v = await createVirtualChip({ chip, state, key: opts.key, protect: opts.protect });
  await v.save();
}

/** A TCP "device" that accepts and then either says nothing or babbles. */
function tcpDevice(babble: boolean): { address: string; close: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let open = true;
  const loops: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      if (!babble) continue;
      loops.push((async () => {
        let x = 0x1234567;
        while (open) {
          const junk = new Uint8Array(64).map(() => (x = (x * 1103515245 + 12345) >>> 0) >>> 24);
          if (!(await conn.write(junk).then(() => true, () => false))) break;
          await new Promise((r) => setTimeout(r, 5));
        }
      })());
    }
  })();
  return {
    address: `tcp://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    async close() {
      open = false;
      listener.close();
      await accepting;
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed by the client
        }
      }
      await Promise.all(loops);
    },
  };
}

const CASES: Case[] = [
  {
    name: "wrong chip mode (a BootROM chip asked for as BK7231T)",
    code: "WRONG_CHIP",
    args: (f) => [...V(f), "--chip", "bk7231t", "chip-info"],
  },
  {
    name: "wrong key (a BK7231M's zero key where a BK7231N is expected)",
    code: "WRONG_KEY",
    state: (s) => tuneState(s, "bk7231n", { key: [0, 0, 0, 0] }),
    args: (f) => [...V(f), "--chip", "bk7231n", "chip-info"],
  },
  {
    name: "image larger than the flash",
    code: "BAD_RANGE",
    setup: async (f) => void (f.extra.img = await writeImage(f, "big.bin", 3 * 1024 * 1024)),
    args: (f) => [...V(f), "write-flash", f.extra.img, "--addr", "0x11000"],
  },
  {
    name: "unaligned write address",
    code: "BAD_RANGE",
    setup: async (f) => void (f.extra.img = await writeImage(f, "app.bin", 0x1000)),
    args: (f) => [...V(f), "write-flash", f.extra.img, "--addr", "0x11001"],
  },
  {
    name: "write address beyond the flash",
    code: "BAD_RANGE",
    setup: async (f) => void (f.extra.img = await writeImage(f, "app.bin", 0x1000)),
    args: (f) => [...V(f), "write-flash", f.extra.img, "--addr", "0x300000"],
  },
  {
    name: "image running past the end of the flash",
    code: "BAD_RANGE",
    setup: async (f) => void (f.extra.img = await writeImage(f, "app.bin", 0x10000)),
    args: (f) => [...V(f), "write-flash", f.extra.img, "--addr", "0x1f8000"],
  },
  {
    name: "bootloader overwrite without --overwrite-bootloader",
    code: "BOOTLOADER_GUARD",
    setup: async (f) => void (f.extra.img = await writeImage(f, "boot.bin", 0x2000)),
    args: (f) => [...V(f), "write-flash", f.extra.img, "--addr", "0x0"],
  },
  {
    name: "erase inside the bootloader without --overwrite-bootloader",
    code: "BOOTLOADER_GUARD",
    args: (f) => [...V(f), "erase-region", "--addr", "0x1000", "--size", "0x2000"],
  },
  {
    name: "erase size not a multiple of 4 KiB",
    code: "BAD_RANGE",
    args: (f) => [...V(f), "erase-region", "--addr", "0x20000", "--size", "0x800"],
  },
  {
    name: "empty image",
    code: "BAD_IMAGE",
    setup: async (f) => void (f.extra.img = await writeImage(f, "empty.bin", 0)),
    args: (f) => [...V(f), "write-flash", f.extra.img, "--addr", "0x11000"],
  },
  {
    name: "missing image",
    code: "BAD_IMAGE",
    args: (f) => [...V(f), "write-flash", `${f.dir}/nope.bin`, "--addr", "0x11000"],
  },
  {
    name: "image is a directory",
    code: "BAD_IMAGE",
    setup: async (f) => void (await Deno.mkdir(`${f.dir}/firmware.bin`)),
    args: (f) => [...V(f), "write-flash", `${f.dir}/firmware.bin`, "--addr", "0x11000"],
  },
  {
    name: "unreadable image (its path runs through a regular file)",
    code: "BAD_IMAGE",
    setup: async (f) => void (f.extra.img = `${await writeImage(f, "notadir", 16)}/app.bin`),
    args: (f) => [...V(f), "write-flash", f.extra.img, "--addr", "0x11000"],
  },
  {
    name: "silent device",
    code: "NO_LINK",
    setup: (f) => {
      const d = tcpDevice(false);
      f.extra.port = d.address;
      f.close = d.close;
      return Promise.resolve();
    },
    args: (f) => ["--port", f.extra.port, "--link-timeout", "300ms", "chip-info"],
  },
  {
    name: "device answering garbage",
    code: "NO_LINK",
    setup: (f) => {
      const d = tcpDevice(true);
      f.extra.port = d.address;
      f.close = d.close;
      return Promise.resolve();
    },
    args: (f) => ["--port", f.extra.port, "--link-timeout", "300ms", "chip-info"],
  },
  {
    name: "port busy (held by another program)",
    code: "PORT",
    setup: async (f) => {
      const pty = Pty.open();
      const holder = await openSerial(pty.path);
      f.extra.port = pty.path;
      f.close = async () => {
        await holder.close();
        await pty.close();
      };
    },
    args: (f) => ["--port", f.extra.port, "--link-timeout", "300ms", "chip-info"],
  },
  {
    name: "port that does not exist",
    code: "PORT",
    args: () => ["--port", "/dev/ttyUSB97", "chip-info"],
  },
  {
    name: "port that is not a serial port",
    code: "PORT",
    args: () => ["--port", "/dev/null", "chip-info"],
  },
  {
    name: "adapter unplugged in the middle of a read",
    code: "DISCONNECTED",
    setup: async (f) => {
      const v = await createVirtualChip({ chip: "bk7231n" });
      const before = v.nor.read(0, v.nor.size);
      const server = serveTcp(v.chip, {}, { pace: "none" });
      let reads = 0;
      v.chip.onCommand = (name) => {
        if (name === "FlashRead4K" && ++reads === 8) void server.close();
      };
      f.extra.port = server.address;
      f.flash = () => Promise.resolve(v.nor.read(0, v.nor.size));
      f.close = () => server.close();
      (f as Fixture & { before?: Uint8Array }).before = before;
    },
    args: (f) => ["--port", f.extra.port, "--baud", "115200", "read-flash", "-o", `${f.dir}/out.bin`],
  },
  {
    name: "CH341A missing",
    code: "USB",
    args: () => ["--port", "ch341a", "chip-info"],
  },
  {
    name: "SPI-mode entry never succeeds",
    code: "SPI_ENTRY",
    args: (f) => [
      "--port",
      "ch341a:virtual:bk7231n",
      "--state",
      f.state,
      "--spi-attempts",
      "3",
      "--faults",
      '{"seed":1,"rates":{"spi-entry-refused":1}}',
      "chip-info",
    ],
  },
  {
    name: "status register locked until power-off (SRP1) over protected flash",
    code: "FLASH_LOCKED",
    state: (s) => tuneState(s, "bk7231n", { protect: 0x011c }),
    setup: async (f) => void (f.extra.img = await writeImage(f, "app.bin", 0x2000)),
    args: (f) => [...V(f), "write-flash", f.extra.img, "--addr", "0x11000"],
  },
  {
    name: "unknown chip id",
    code: "USAGE",
    args: (f) => [...V(f), "--chip", "bk9999", "chip-info"],
  },
  {
    name: "unknown port scheme",
    code: "USAGE",
    args: () => ["--port", "ftp://example", "chip-info"],
  },
  {
    name: "address that is not a number",
    code: "USAGE",
    setup: async (f) => void (f.extra.img = await writeImage(f, "app.bin", 0x1000)),
    args: (f) => [...V(f), "write-flash", f.extra.img, "--addr", "zz"],
  },
  {
    name: "unknown command",
    code: "USAGE",
    args: (f) => [...V(f), "flash-everything"],
  },
  {
    name: "--state on a real port",
    code: "USAGE",
    args: (f) => ["--port", "/dev/ttyUSB97", "--state", f.state, "chip-info"],
  },
  {
    name: "a UART chip mode on an SPI port",
    code: "USAGE",
    args: (f) => ["--port", "ch341a:virtual:bk7231n", "--state", f.state, "--chip", "bk7231n", "chip-info"],
  },
  {
    name: "--resume with the journal of another job",
    code: "USAGE",
    setup: async (f) => {
      f.extra.img = await writeImage(f, "app.bin", 0x1000);
      await Deno.mkdir(`${f.dir}/b`, { recursive: true });
      f.extra.journal = `${f.dir}/b/other.journal.json`;
      await Deno.writeTextFile(
        f.extra.journal,
        JSON.stringify({
          version: 1,
          op: "write",
          chip: "BK7231N",
          flashId: "eb6015",
          addr: 0x20000,
          size: 0x1000,
          crc32: "00000000",
          backup: null,
          planned: [0x20000],
          done: [],
          state: "in-progress",
          createdAt: "2026-11-22T01:00:00Z",
        }),
      );
    },
    args: (f) => [...V(f), "write-flash", f.extra.img, "--addr", "0x11000", "--resume", f.extra.journal],
  },
  {
    name: "read-flash into a directory that does not exist",
    code: "USAGE",
    args: (f) => [...V(f), "read-flash", "-o", `${f.dir}/no/such/dir/out.bin`],
  },
  {
    name: "--faults on a real port",
    code: "USAGE",
    args: () => ["--port", "/dev/ttyUSB97", "--faults", '{"rates":{}}', "chip-info"],
  },
];

Deno.test("bad-input catalogue: one-line cause and remedy, non-zero exit, flash untouched", async (t) => {
  assert.ok(CASES.length >= 25, `${CASES.length} cases`);
  const causes = new Map<string, string>();
  for (const c of CASES) {
    await t.step(c.name, async () => {
      const dir = await Deno.makeTempDir({ prefix: "bekenlab-bad-" });
      const f: Fixture = { dir, state: `${dir}/chip.state`, extra: {} };
      try {
        if (c.state) await c.state(f.state);
        else await tuneState(f.state, c.chip ?? "bk7231n", {});
        const stateBefore = decodeState(await Deno.readFile(f.state)).flash;
        await c.setup?.(f);
        const before = (f as Fixture & { before?: Uint8Array }).before;
        const r = await flash(["--json", ...c.args(f)]);
        assert.notEqual(r.code, 0, `exit status 0 for ${c.name}`);
        const lines = r.stderr.split("\n").filter((l) => l.startsWith("error: ") || l.startsWith("remedy: "));
        const errors = lines.filter((l) => l.startsWith("error: "));
        const remedies = lines.filter((l) => l.startsWith("remedy: "));
        assert.equal(errors.length, 1, `one cause line:\n${r.stderr}`);
        assert.equal(remedies.length, 1, `one remedy line:\n${r.stderr}`);
        assert.ok(remedies[0].length > "remedy: ".length + 10, remedies[0]);
        assert.ok(!r.stderr.includes("internal error"), r.stderr);
        const json = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}");
        assert.equal(json.code, c.code, `${c.name}: ${r.stderr}`);
        assert.equal(json.ok, false);
        const seen = causes.get(errors[0].replace(/\/tmp\/[^ ,:)]+/g, "<tmp>").replace(/\d+/g, "N"));
        assert.equal(seen, undefined, `cause of "${c.name}" repeats "${seen}": ${errors[0]}`);
        causes.set(errors[0].replace(/\/tmp\/[^ ,:)]+/g, "<tmp>").replace(/\d+/g, "N"), c.name);
        const stateAfter = decodeState(await Deno.readFile(f.state)).flash;
        assert.ok(stateAfter.every((b, i) => b === stateBefore[i]), "the virtual chip's flash changed");
        if (f.flash && before) {
          const now = await f.flash();
          assert.ok(now.every((b, i) => b === before[i]), "the served chip's flash changed");
        }
      } finally {
        await f.close?.();
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});
