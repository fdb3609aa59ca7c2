import assert from "node:assert/strict";
import { asCancelled, main } from "../cli/flash.ts";
import { type ErrorCode, FlashError } from "../core/errors.ts";
import { openSerial } from "../core/io/serial/mod.ts";
import { Pty } from "../emulator/pty.ts";
import { writeThrough } from "../emulator/persist.ts";
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

async function flash(args: string[], signal?: AbortSignal): Promise<Run & { bytes: Uint8Array[] }> {
  let stdout = "";
  let stderr = "";
  const bytes: Uint8Array[] = [];
  const code = await main(args, {
    io: {
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
      stderrIsTTY: false,
      stdoutBytes: (b) => Promise.resolve(void bytes.push(b.slice())),
    },
    now: () => new Date("2026-11-22T02:00:00Z"),
    confirm: () => Promise.resolve(false),
    signal,
  });
  return { code, stdout, stderr, bytes };
}

/** Files in `dir` (recursively) whose name ends in `.tmp`. */
async function tmpFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) found.push(...await tmpFiles(`${dir}/${e.name}`));
    else if (e.name.endsWith(".tmp")) found.push(`${dir}/${e.name}`);
  }
  return found;
}

/** A copy of the case's state file at `name`, for cases that pass their own --state. */
async function copyState(f: Fixture, name: string): Promise<string> {
  const path = `${f.dir}/${name}`;
  await Deno.copyFile(f.state, path);
  return path;
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
  /** Press Ctrl-C (from a setup's hook, at the moment it chooses). */
  abort: () => void;
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
  /** Extra checks after the run (files the refusal must not leave behind). */
  check?: (f: Fixture) => Promise<void>;
  /** Run with Ctrl-C already pressed. */
  interrupted?: boolean;
  /** What the cause line must say, where a generic refusal would hide the bug. */
  cause?: RegExp;
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
  // issue 10
  {
    name: "BK7231M mode on a BK7231N (the efuse holds the Tuya key)",
    code: "WRONG_KEY",
    args: (f) => [...V(f), "--chip", "bk7231m", "chip-info"],
    check: async (f) => assert.equal(await Deno.stat(`${f.dir}/b`).catch(() => null), null, "a backup"),
  },
  {
    name: "--state is a directory",
    code: "USAGE",
    cause: /is a directory/,
    setup: async (f) => void (await Deno.mkdir(`${f.dir}/states`)),
    args: (f) => ["--port", "virtual:bk7231n", "--state", `${f.dir}/states`, "chip-info"],
    check: async (f) => assert.deepEqual(await tmpFiles(f.dir), []),
  },
  {
    name: "--state is read-only",
    code: "USAGE",
    setup: async (f) => {
      f.extra.ro = await copyState(f, "ro.state");
      await Deno.chmod(f.extra.ro, 0o444);
      f.extra.roBefore = String((await Deno.stat(f.extra.ro)).mtime?.getTime());
    },
    args: (f) => ["--port", "virtual:bk7231n", "--state", f.extra.ro, "chip-info"],
    check: async (f) => {
      assert.deepEqual(await tmpFiles(f.dir), [], "a .tmp was left behind");
      const st = await Deno.stat(f.extra.ro);
      assert.equal(st.mode! & 0o777, 0o444, "the read-only state file was replaced");
      assert.equal(String(st.mtime?.getTime()), f.extra.roBefore);
    },
  },
  {
    name: "--faults kind the UART port cannot inject (power loss on virtual:)",
    code: "USAGE",
    args: (f) => [...V(f), "--faults", '{"seed":1,"rates":{"power-loss-erase":1}}', "chip-info"],
  },
  {
    name: "--faults USB kind on a UART port",
    code: "USAGE",
    args: (f) => [...V(f), "--faults", '{"seed":1,"rates":{"usb-flip":0.5}}', "chip-info"],
  },
  {
    name: "--faults link kind on ch341a:virtual:",
    code: "USAGE",
    args: (
      f,
    ) => [
      "--port",
      "ch341a:virtual:bk7231n",
      "--state",
      f.state,
      "--faults",
      '{"rates":{"rx-flip":1}}',
      "chip-info",
    ],
  },
  {
    name: "read-flash into the --state file",
    code: "USAGE",
    args: (f) => [...V(f), "read-flash", "-o", f.state],
  },
  {
    name: "read-flash over a backup in --backup-dir",
    code: "USAGE",
    setup: async (f) => {
      await Deno.mkdir(`${f.dir}/b`);
      f.extra.backup = `${f.dir}/b/BK7231N_eb6015_20261122T010000Z.bin`;
      await Deno.writeFile(f.extra.backup, new Uint8Array(16).fill(7));
      await Deno.writeTextFile(`${f.dir}/b/BK7231N_eb6015_20261122T010000Z.json`, "{}");
    },
    args: (f) => [...V(f), "read-flash", "-o", f.extra.backup],
    check: async (f) => assert.deepEqual(await Deno.readFile(f.extra.backup), new Uint8Array(16).fill(7)),
  },
  {
    name: "read-flash over a journal",
    code: "USAGE",
    setup: async (f) => {
      await Deno.mkdir(`${f.dir}/b`);
      f.extra.journal = `${f.dir}/b/BK7231N_eb6015_20261122T010000Z.journal.json`;
      await Deno.writeTextFile(f.extra.journal, "{}");
    },
    args: (f) => [...V(f), "read-flash", "-o", f.extra.journal],
  },
  {
    name: "--link-timeout 0",
    code: "USAGE",
    args: (f) => [...V(f), "--link-timeout", "0", "chip-info"],
  },
  {
    name: "--out - (stdout) with --json",
    code: "USAGE",
    args: (f) => [...V(f), "read-flash", "-o", "-"],
    check: async (f) => assert.equal(await Deno.stat(`${f.dir}/-`).catch(() => null), null),
  },
  {
    name: "second client of a busy emulator",
    code: "PORT",
    setup: async (f) => {
      const v = await createVirtualChip({ chip: "bk7231n" });
      const server = serveTcp(v.chip, {}, { pace: "none" });
      const first = await Deno.connect({ hostname: "127.0.0.1", port: Number(server.address.split(":")[2]) });
      f.extra.port = server.address;
      f.close = async () => {
        first.close();
        await server.close();
      };
    },
    args: (f) => ["--port", f.extra.port, "--link-timeout", "5s", "chip-info"],
  },
  {
    name: "image is a FIFO",
    code: "BAD_IMAGE",
    setup: async (f) => {
      f.extra.img = `${f.dir}/app.fifo`;
      const made = await new Deno.Command("mkfifo", { args: [f.extra.img] }).output();
      assert.ok(made.success, "mkfifo");
      // a writer, so that a CLI that opens the FIFO gets an image (and writes it) instead of hanging
      const writer = new Deno.Command("sh", {
        args: ["-c", 'head -c 4096 /dev/zero > "$1"', "sh", f.extra.img],
        stdout: "null",
        stderr: "null",
      }).spawn();
      f.close = async () => {
        try {
          writer.kill();
        } catch {
          // it has already written
        }
        await writer.status;
      };
    },
    args: (f) => [...V(f), "write-flash", f.extra.img, "--addr", "0x11000"],
  },
  {
    name: "--spi-attempts 0",
    code: "USAGE",
    args: (f) => ["--port", "ch341a:virtual:bk7231n", "--state", f.state, "--spi-attempts", "0", "chip-info"],
  },
  {
    name: "--seed on a tcp:// port",
    code: "USAGE",
    args: () => ["--port", "tcp://127.0.0.1:9", "--seed", "3", "chip-info"],
  },
  {
    name: "Ctrl-C while linking with a silent device",
    code: "CANCELLED",
    interrupted: true,
    setup: (f) => {
      const d = tcpDevice(false);
      f.extra.port = d.address;
      f.close = d.close;
      return Promise.resolve();
    },
    args: (f) => ["--port", f.extra.port, "--link-timeout", "10s", "chip-info"],
  },
  {
    name: "Ctrl-C while the chip is being identified",
    code: "CANCELLED",
    setup: async (f) => {
      const v = await createVirtualChip({ chip: "bk7231n" });
      const server = serveTcp(v.chip, {}, { pace: "none" });
      v.chip.onCommand = (name) => {
        if (name === "CheckCRC") f.abort();
      };
      f.extra.port = server.address;
      f.close = () => server.close();
    },
    args: (f) => ["--port", f.extra.port, "--baud", "115200", "chip-info"],
  },
];

Deno.test("bad-input catalogue: one-line cause and remedy, non-zero exit, flash untouched", async (t) => {
  assert.ok(CASES.length >= 25, `${CASES.length} cases`);
  const causes = new Map<string, string>();
  for (const c of CASES) {
    await t.step(c.name, async () => {
      const dir = await Deno.makeTempDir({ prefix: "bekenlab-bad-" });
      const ac = new AbortController();
      const f: Fixture = { dir, state: `${dir}/chip.state`, extra: {}, abort: () => ac.abort() };
      try {
        if (c.state) await c.state(f.state);
        else await tuneState(f.state, c.chip ?? "bk7231n", {});
        const stateBefore = decodeState(await Deno.readFile(f.state)).flash;
        await c.setup?.(f);
        const before = (f as Fixture & { before?: Uint8Array }).before;
        if (c.interrupted) ac.abort();
        const started = performance.now();
        const r = await flash(["--json", ...c.args(f)], ac.signal);
        if (c.interrupted) assert.ok(performance.now() - started < 5000, "Ctrl-C was not heard at once");
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
        if (c.cause) assert.match(errors[0], c.cause);
        const seen = causes.get(errors[0].replace(/\/tmp\/[^ ,:)]+/g, "<tmp>").replace(/\d+/g, "N"));
        assert.equal(seen, undefined, `cause of "${c.name}" repeats "${seen}": ${errors[0]}`);
        causes.set(errors[0].replace(/\/tmp\/[^ ,:)]+/g, "<tmp>").replace(/\d+/g, "N"), c.name);
        const stateAfter = decodeState(await Deno.readFile(f.state)).flash;
        assert.ok(stateAfter.every((b, i) => b === stateBefore[i]), "the virtual chip's flash changed");
        if (f.flash && before) {
          const now = await f.flash();
          assert.ok(now.every((b, i) => b === before[i]), "the served chip's flash changed");
        }
        await c.check?.(f);
      } finally {
        await f.close?.();
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});

Deno.test("no command: the help on stderr, exit 2, no commander internals", async () => {
  const r = await flash([]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Usage: flash/);
  assert.ok(!r.stderr.includes("outputHelp"), r.stderr);
  assert.ok(!/^error:/m.test(r.stderr), r.stderr);
  assert.equal(r.stdout, "");
  const j = await flash(["--json"]);
  assert.equal(j.code, 2);
  assert.equal(JSON.parse(j.stdout).code, "USAGE");
});

Deno.test("--faults: the summary is the session's last word, after the job", async () => {
  const r = await flash([
    "--port",
    "virtual:bk7231n",
    "--faults",
    '{"seed":1,"rates":{"fragment":0.5}}',
    "chip-info",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.match(lines[lines.length - 1], /^faults injected: fragment \d+$/, r.stderr);
  assert.ok(lines.some((l) => l.startsWith("accounting")), r.stderr);
});

Deno.test("read-flash --out - and /dev/stdout: the bytes on stdout, every message on stderr", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bekenlab-bad-" });
  try {
    const file = await flash([
      "--port",
      "virtual:bk7231n",
      "read-flash",
      "--size",
      "8K",
      "-o",
      `${dir}/a.bin`,
    ]);
    assert.equal(file.code, 0, file.stderr);
    const want = await Deno.readFile(`${dir}/a.bin`);
    for (const out of ["-", "/dev/stdout"]) {
      const r = await flash(["--port", "virtual:bk7231n", "read-flash", "--size", "8K", "-o", out]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "", "text on stdout would corrupt the dump");
      assert.deepEqual(new Uint8Array(r.bytes.flatMap((b) => [...b])), want);
      assert.match(r.stderr, /^Read 8 KiB at 0x0 from BK7231N into stdout/m);
      assert.equal(await Deno.stat("-").catch(() => null), null, "a file named - was created");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("key check overridden: the backup is named for the chip the efuse names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bekenlab-bad-" });
  try {
    await Deno.writeFile(`${dir}/app.bin`, new Uint8Array(0x1000).fill(0x33));
    const r = await flash([
      "--port",
      "virtual:bk7231n",
      "--state",
      `${dir}/n.state`,
      "--backup-dir",
      `${dir}/b`,
      "--chip",
      "bk7231m",
      "--skip-key-check",
      "write-flash",
      `${dir}/app.bin`,
      "--addr",
      "0x100000",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: .*BK7231N key.*overridden/);
    const names = [];
    // the backup directory's lock file (.bekenlab.lock) names no chip
    for await (const e of Deno.readDir(`${dir}/b`)) if (!e.name.startsWith(".")) names.push(e.name);
    assert.ok(names.length > 0 && names.every((n) => n.startsWith("BK7231N_")), names.join(", "));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a state save that fails leaves no .tmp behind", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bekenlab-bad-" });
  try {
    const v = await createVirtualChip({ chip: "bk7231n", state: `${dir}/a.state` });
    await Deno.mkdir(`${dir}/a.state`); // the rename onto it fails
    await assert.rejects(v.save());
    assert.deepEqual(await tmpFiles(dir), []);
    await Deno.mkdir(`${dir}/b.state`);
    assert.throws(() => writeThrough(v, `${dir}/b.state`));
    assert.deepEqual(await tmpFiles(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("whatever a phase makes of Ctrl-C, it is reported as the interruption (exit 130)", () => {
  const damage = { start: 0x20000, end: 0x21000, backup: "b/x.bin" };
  const w = asCancelled(
    new FlashError("WRITE_FAILED", "write failed", "retry", { damage }),
    true,
  ) as FlashError;
  assert.equal(w.code, "CANCELLED");
  assert.deepEqual(w.damage, damage);
  assert.match(w.remedy, /--resume/);
  const e = asCancelled(
    new FlashError("WRITE_FAILED", "erase failed", "retry", { damage }),
    false,
  ) as FlashError;
  assert.ok(!e.remedy.includes("--resume"), "erase-region has no --resume");
  const n = asCancelled(new FlashError("NO_LINK", "no reply", "reset"), false) as FlashError;
  assert.equal(n.code, "CANCELLED");
  assert.equal(n.damage, undefined);
});
