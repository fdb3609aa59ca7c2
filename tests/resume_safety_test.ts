import assert from "node:assert/strict";
import { main } from "../cli/flash.ts";
import { lockPath } from "../core/io/lock.ts";
import { decodeState } from "../emulator/state.ts";
import { createVirtualChip } from "../emulator/virtual.ts";

/**
 * `write-flash --resume` that cannot do harm, and locked job files (issue 10, bugs 1–4), end to
 * end through the CLI: a write of a 1 920 KiB image at 0x11000 is cut by a seeded disconnect,
 * then the backup is corrupted, newer data is written, another chip is connected, or a second
 * process runs, and the resume (or the second process) must lose nothing: refused with one line
 * of cause and one of remedy and the flash untouched, or done right with every overwrite outside
 * the job said without -v and saved first.
 */

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let clock = Date.parse("2026-11-22T02:00:00Z");

async function flash(args: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  // every command a second later: backup and journal names never collide
  const at = new Date(clock += 1000);
  const code = await main(args, {
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stderrIsTTY: false },
    now: () => at,
    confirm: () => Promise.resolve(false),
  });
  return { code, stdout, stderr };
}

// the 2800th link call falls inside the write (at 0x70000 today): after the backup and the fingerprint.
// The count moves when the wire traffic before the write changes; `interrupt` says so when it does.
const DISCONNECT = '{"seed":1,"rates":{"disconnect":1},"skip":{"disconnect":2800},"maxFaults":1}';
// with the backup reused (nothing read) the write starts sooner: the 1000th call is inside it (0xb0000)
const DISCONNECT_REUSED = '{"seed":1,"rates":{"disconnect":1},"skip":{"disconnect":1000},"maxFaults":1}';
const BIG = 1_966_080;

/** Deterministic "random" bytes. */
function noise(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

interface Bench {
  dir: string;
  state: string;
  bk: string;
  big: string;
  /** `--port virtual:bk7231n --state <state> --backup-dir <bk>` */
  v: (state?: string) => string[];
  /** Flash of a state file. */
  chip: (state?: string) => Promise<Uint8Array>;
  /** The files of the backup directory (name → path). */
  files: () => Promise<string[]>;
}

async function bench(): Promise<Bench> {
  const dir = await Deno.makeTempDir({ prefix: "bekenlab-resume-" });
  const state = `${dir}/S`;
  const bk = `${dir}/bk`;
  const big = `${dir}/big.bin`;
  await Deno.writeFile(big, noise(BIG, 7));
  return {
    dir,
    state,
    bk,
    big,
    v: (s = state) => ["--port", "virtual:bk7231n", "--state", s, "--backup-dir", bk],
    chip: async (s = state) => decodeState(await Deno.readFile(s)).flash,
    files: async () => {
      const out: string[] = [];
      for await (const e of Deno.readDir(bk)) out.push(e.name);
      return out.sort();
    },
  };
}

/** The issue's interrupted job; returns the chip as it was before it. */
async function interrupt(b: Bench): Promise<Uint8Array> {
  const v = await createVirtualChip({ chip: "bk7231n", state: b.state });
  await v.save();
  const original = await b.chip();
  const r = await flash([...b.v(), "--faults", DISCONNECT, "write-flash", b.big, "--addr", "0x11000"]);
  assert.equal(
    r.code,
    10,
    `the disconnect no longer falls inside the write (move DISCONNECT's skip):\n${r.stderr}`,
  );
  assert.match(r.stderr, /device disconnected/);
  return original;
}

/** One line of cause, one of remedy, non-zero exit, the given code in --json. */
function refused(r: Run, code: string, cause: RegExp): void {
  assert.notEqual(r.code, 0, r.stderr);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error: "));
  const remedies = r.stderr.split("\n").filter((l) => l.startsWith("remedy: "));
  assert.equal(errors.length, 1, r.stderr);
  assert.equal(remedies.length, 1, r.stderr);
  assert.match(errors[0], cause);
  if (r.stdout.trim()) assert.equal(JSON.parse(r.stdout.trim().split("\n").pop()!).code, code, r.stderr);
}

function same(a: Uint8Array, b: Uint8Array, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) assert.fail(`${what}: differs at 0x${i.toString(16)}`);
  }
}

async function backupOf(b: Bench): Promise<{ bin: string; sidecar: string; journal: string }> {
  const names = await b.files();
  let journal = "";
  for (const n of names.filter((n) => n.endsWith(".journal.json"))) {
    if (JSON.parse(await Deno.readTextFile(`${b.bk}/${n}`)).state !== "verified") journal = n;
  }
  const base = journal.replace(/\.journal\.json$/, "");
  return { bin: `${b.bk}/${base}.bin`, sidecar: `${b.bk}/${base}.json`, journal: `${b.bk}/${journal}` };
}

async function corrupt(path: string, at: number): Promise<void> {
  const f = await Deno.open(path, { write: true });
  await f.seek(at, Deno.SeekMode.Start);
  await f.write(Uint8Array.of(0xde, 0xad, 0xbe, 0xef));
  f.close();
}

async function rewriteJson(path: string, edit: (o: Record<string, unknown>) => void): Promise<void> {
  const o = JSON.parse(await Deno.readTextFile(path));
  edit(o);
  await Deno.writeTextFile(path, JSON.stringify(o));
}

const resume = (b: Bench, ...more: string[]) => [
  ...b.v(),
  "--json",
  "write-flash",
  b.big,
  "--addr",
  "0x11000",
  "--resume",
  ...more,
];

Deno.test("bug 1: a corrupted backup is never written anywhere, however consistent its sidecar and journal are made", async (t) => {
  const b = await bench();
  try {
    const original = await interrupt(b);
    const { bin, sidecar, journal } = await backupOf(b);
    const afterCut = await b.chip();
    await corrupt(bin, 256);

    await t.step("the backup's CRC against its sidecar", async () => {
      const r = await flash(resume(b));
      refused(
        r,
        "BACKUP_FAILED",
        /backup .* does not check out: its CRC-32 is \w+, its sidecar says \w+; nothing was written/,
      );
      same(await b.chip(), afterCut, "the chip");
      same((await b.chip()).subarray(0, 0x11000), original.subarray(0, 0x11000), "the bootloader");
    });

    // a "repaired" sidecar: the journal remembers the backup's CRC
    const { crc32 } = await import("../core/crc.ts");
    const now = (crc32(await Deno.readFile(bin)) >>> 0).toString(16).padStart(8, "0");
    await rewriteJson(sidecar, (o) => (o.crc32 = now));
    await t.step("the backup's CRC against the journal", async () => {
      const r = await flash(resume(b));
      refused(r, "BACKUP_FAILED", /its CRC-32 is \w+, the journal says \w+; nothing was written/);
      same(await b.chip(), afterCut, "the chip");
    });

    // and the journal too: the chip CRCs taken before the first erase still tell
    await rewriteJson(journal, (o) => (o.backupCrc32 = now));
    await t.step("the backup against the chip CRCs taken before the first erase", async () => {
      const r = await flash(resume(b));
      refused(
        r,
        "BACKUP_FAILED",
        /0x0\.\.0xffff differs from what the chip held before the job's first erase/,
      );
      same(await b.chip(), afterCut, "the chip");
    });
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("bug 2: newer data written after the interruption is named and kept; only an explicit flag writes the backup back, after saving it", async (t) => {
  const b = await bench();
  try {
    await interrupt(b);
    const cfgPath = `${b.dir}/cfg.bin`;
    const cfg = noise(8192, 99);
    await Deno.writeFile(cfgPath, cfg);
    const w = await flash([...b.v(), "write-flash", cfgPath, "--addr", "0x1f8000"]);
    assert.equal(w.code, 0, w.stderr);
    const withCfg = await b.chip();

    await t.step("the resume refuses and names the changed sectors", async () => {
      const r = await flash(resume(b));
      refused(
        r,
        "USAGE",
        /2 sector\(s\) outside the image changed since the write was interrupted \(0x1f8000\.\.0x1f9fff\).*nothing was written/,
      );
      assert.match(r.stderr, /remedy: .*without --resume.*--restore-outside/);
      same(await b.chip(), withCfg, "the chip");
      const v = await flash([...b.v(), "verify-flash", cfgPath, "--addr", "0x1f8000"]);
      assert.equal(v.code, 0, v.stderr);
    });

    await t.step("--restore-outside says so without -v and saves what it overwrites first", async () => {
      const r = await flash(resume(b, "--restore-outside"));
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /writing back 2 sector\(s\) outside the job from the backup .* \(0x1f8000\.\.0x1f9fff\): .*saved in .*\.overwritten-\w+\.bin/,
      );
      assert.deepEqual(JSON.parse(r.stdout).restoredOutside, ["0x1f8000", "0x1f9000"]);
      const saved = (await b.files()).find((n) => /\.overwritten-\w+\.bin$/.test(n))!;
      same(await Deno.readFile(`${b.bk}/${saved}`), cfg, "the saved copy of the newer data");
      const side = JSON.parse(await Deno.readTextFile(`${b.bk}/${saved.replace(/\.bin$/, ".json")}`));
      assert.deepEqual(side.sectors, [0x1f8000, 0x1f9000]);
      const v = await flash([...b.v(), "verify-flash", b.big, "--addr", "0x11000"]);
      assert.equal(v.code, 0, v.stderr);
    });
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("a resume clears block protection set again since the interruption before it writes back", async () => {
  // found by the fuzz campaign (seed 20261206 run 24398): the write-back ran before the job's
  // unprotect, the protected chip ignored every erase and the resume failed
  const b = await bench();
  try {
    await interrupt(b);
    const cfgPath = `${b.dir}/cfg.bin`;
    await Deno.writeFile(cfgPath, noise(8192, 99));
    assert.equal((await flash([...b.v(), "write-flash", cfgPath, "--addr", "0x1f8000"])).code, 0);
    const v = await createVirtualChip({ chip: "bk7231n", state: b.state });
    v.nor.srWord = 0x1c; // every block protected (BP2..BP0), as a reset to the firmware can leave it
    await v.save();
    const r = await flash(resume(b, "--restore-outside"));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).restoredOutside, ["0x1f8000", "0x1f9000"]);
    const verified = await flash([...b.v(), "verify-flash", b.big, "--addr", "0x11000"]);
    assert.equal(verified.code, 0, verified.stderr);
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("bug 2, the other way: the job finished without --resume keeps the newer data", async () => {
  const b = await bench();
  try {
    await interrupt(b);
    const cfgPath = `${b.dir}/cfg.bin`;
    await Deno.writeFile(cfgPath, noise(8192, 99));
    assert.equal((await flash([...b.v(), "write-flash", cfgPath, "--addr", "0x1f8000"])).code, 0);
    const r = await flash([...b.v(), "write-flash", b.big, "--addr", "0x11000"]);
    assert.equal(r.code, 0, r.stderr);
    for (const [img, addr] of [[cfgPath, "0x1f8000"], [b.big, "0x11000"]]) {
      const v = await flash([...b.v(), "verify-flash", img, "--addr", addr]);
      assert.equal(v.code, 0, v.stderr);
    }
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("a changed bootloader sector is written back only with --overwrite-bootloader, and saved first", async () => {
  const b = await bench();
  try {
    const original = await interrupt(b);
    const loader = `${b.dir}/loader.bin`;
    await Deno.writeFile(loader, noise(4096, 5));
    const w = await flash([...b.v(), "--overwrite-bootloader", "write-flash", loader, "--addr", "0"]);
    assert.equal(w.code, 0, w.stderr);
    const before = await b.chip();
    const r = await flash(resume(b, "--restore-outside"));
    refused(
      r,
      "BOOTLOADER_GUARD",
      /1 of the sector\(s\) to write back lie in the bootloader window.*nothing was written/,
    );
    same(await b.chip(), before, "the chip");
    const ok = await flash(["--overwrite-bootloader", ...resume(b, "--restore-outside")]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /writing back 1 sector\(s\) outside the job .*\(0x0\.\.0xfff\)/);
    same(
      (await b.chip()).subarray(0, 0x11000),
      original.subarray(0, 0x11000),
      "the bootloader, as the backup had it",
    );
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("bug 3: a resume against another chip of the same model is refused and touches nothing", async (t) => {
  const b = await bench();
  try {
    await interrupt(b);
    const other = `${b.dir}/S2`;
    await t.step("same model, same flash ID and key, different content", async () => {
      await (await createVirtualChip({ chip: "bk7231n", state: other })).save();
      const app = `${b.dir}/other.bin`;
      await Deno.writeFile(app, noise(300_000, 3));
      const w = await flash([
        "--port",
        "virtual:bk7231n",
        "--state",
        other,
        "--backup-dir",
        `${b.dir}/bk2`,
        "write-flash",
        app,
        "--addr",
        "0x11000",
      ]);
      assert.equal(w.code, 0, w.stderr);
      const before = await b.chip(other);
      const r = await flash([...b.v(other), "--json", "write-flash", b.big, "--addr", "0x11000", "--resume"]);
      refused(r, "WRONG_CHIP", /this chip is not the one the interrupted job ran on.*nothing was written/);
      same(await b.chip(other), before, "the other chip");
      assert.ok(
        !(await b.files()).some((n) => n.includes("overwritten")),
        "nothing to save: nothing written",
      );
    });
    await t.step("another flash ID", async () => {
      await Deno.remove(other);
      await (await createVirtualChip({ chip: "bk7231n", state: other, flashId: [0x85, 0x60, 0x15] })).save();
      const before = await b.chip(other);
      const r = await flash([...b.v(other), "--json", "write-flash", b.big, "--addr", "0x11000", "--resume"]);
      refused(
        r,
        "WRONG_CHIP",
        /the journal names BK7231N, flash eb6015.*; this one is BK7231N, flash 856015/,
      );
      same(await b.chip(other), before, "the other chip");
    });
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("an uncorrupted interrupted job resumes and finishes, and the bootloader is untouched", async () => {
  const b = await bench();
  try {
    const original = await interrupt(b);
    const r = await flash(resume(b));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /resuming the write started/);
    const now = await b.chip();
    same(now.subarray(0x11000, 0x11000 + BIG), await Deno.readFile(b.big), "the image");
    same(now.subarray(0, 0x11000), original.subarray(0, 0x11000), "the bootloader");
    same(now.subarray(0x11000 + BIG), original.subarray(0x11000 + BIG), "the rest");
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

const CLI = ["run", "--allow-all", new URL("../cli/flash.ts", import.meta.url).pathname];

async function spawn(args: string[]): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test("bug 4: two processes on one --state: every write reported verified still verifies; an overlapping one is refused", async () => {
  const b = await bench();
  try {
    await (await createVirtualChip({ chip: "bk7231n", state: b.state })).save();
    const imgs = [`${b.dir}/a.bin`, `${b.dir}/b.bin`];
    await Deno.writeFile(imgs[0], noise(0x80000, 11));
    await Deno.writeFile(imgs[1], noise(0x80000, 12));
    const addrs = ["0x100000", "0x180000"];
    const runs = await Promise.all(
      imgs.map((img, i) => spawn([...b.v(), "write-flash", img, "--addr", addrs[i]])),
    );
    for (const [i, r] of runs.entries()) {
      if (r.code === 0) {
        const v = await flash([...b.v(), "verify-flash", imgs[i], "--addr", addrs[i]]);
        assert.equal(v.code, 0, `${imgs[i]} was reported written but no longer verifies: ${v.stderr}`);
      } else {
        refused(r, "PORT", /is in use by another process$/);
      }
    }
    assert.ok(runs.some((r) => r.code === 0), runs.map((r) => r.stderr).join("\n---\n"));
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("bug 4, overlapping for sure: two jobs on one --state in one process, the second is refused", async () => {
  const b = await bench();
  try {
    await (await createVirtualChip({ chip: "bk7231n", state: b.state })).save();
    const imgs = [`${b.dir}/a.bin`, `${b.dir}/b.bin`];
    await Deno.writeFile(imgs[0], noise(0x40000, 11));
    await Deno.writeFile(imgs[1], noise(0x40000, 12));
    const addrs = ["0x100000", "0x180000"];
    // both start at once; a job holds its locks over many turns of the event loop
    const runs = await Promise.all(
      imgs.map((img, i) => flash([...b.v(), "write-flash", img, "--addr", addrs[i]])),
    );
    const ok = runs.filter((r) => r.code === 0);
    assert.equal(ok.length, 1, runs.map((r) => r.stderr).join("\n---\n"));
    refused(runs.find((r) => r.code !== 0)!, "PORT", /S is in use by another process$/);
    const i = runs.indexOf(ok[0]);
    assert.equal((await flash([...b.v(), "verify-flash", imgs[i], "--addr", addrs[i]])).code, 0);
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("two jobs on two chips share one --backup-dir: the second is refused and its chip untouched", async () => {
  const b = await bench();
  try {
    const states = [b.state, `${b.dir}/S2`];
    for (const [i, s] of states.entries()) {
      await (await createVirtualChip({ chip: "bk7231n", state: s, seed: i + 1 })).save();
    }
    const before = await Promise.all(states.map((s) => b.chip(s)));
    const img = `${b.dir}/a.bin`;
    await Deno.writeFile(img, noise(0x40000, 13));
    // both start at once; the first job to reach its plan holds the directory to its end
    const runs = await Promise.all(
      states.map((s) => flash([...b.v(s), "write-flash", img, "--addr", "0x100000"])),
    );
    const ok = runs.filter((r) => r.code === 0);
    assert.equal(ok.length, 1, runs.map((r) => r.stderr).join("\n---\n"));
    const loser = runs.findIndex((r) => r.code !== 0);
    refused(runs[loser], "PORT", /bk is in use by another process$/);
    assert.deepEqual(await b.chip(states[loser]), before[loser], "the refused job's chip is untouched");
    // the one backup in the directory is the winner's chip as it was
    const backups = (await b.files()).filter((f) => /^BK7231N_[^.]*\.bin$/.test(f));
    assert.equal(backups.length, 1, backups.join(" "));
    assert.deepEqual(await Deno.readFile(`${b.bk}/${backups[0]}`), before[1 - loser]);
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("locks are OS flock locks: held by one process, refused to another, free again after", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bekenlab-lock-" });
  try {
    const state = `${dir}/S`;
    await (await createVirtualChip({ chip: "bk7231n", state })).save();
    const flockN = (file: string) =>
      new Deno.Command("flock", { args: ["-n", file, "true"], stdout: "null", stderr: "null" }).output();
    for (const [path, directory] of [[state, false], [`${dir}/bk`, true]] as const) {
      const lock = await lockPath(path, { directory });
      try {
        assert.equal((await flockN(lock.lockFile)).code, 1, `flock(1) sees ${lock.lockFile} locked`);
        const args = directory
          ? ["--port", "virtual:bk7231n", "--state", `${dir}/other`, "--backup-dir", path]
          : ["--port", "virtual:bk7231n", "--state", path, "--backup-dir", `${dir}/bk-other`];
        const r = await spawn([...args, "erase-region", "--addr", "0x100000", "--size", "0x1000"]);
        refused(r, "PORT", new RegExp(`${path} is in use by another process$`));
        assert.match(r.stderr, /remedy: wait for the other bekenlab command/);
        // the same process, another open file: refused too (flock belongs to the open file)
        await assert.rejects(lockPath(path, { directory }), /is in use by another process/);
      } finally {
        lock.release();
      }
      assert.equal((await flockN(lock.lockFile)).code, 0, "released");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a journal without a device fingerprint (older format) is refused, and --restore-outside needs --resume", async () => {
  const b = await bench();
  try {
    await interrupt(b);
    const { journal } = await backupOf(b);
    const before = await b.chip();
    await rewriteJson(journal, (o) => {
      o.version = 1;
      delete o.fingerprint;
    });
    const r = await flash(resume(b));
    refused(r, "USAGE", /holds no fingerprint of the chip it was made on \(an older bekenlab wrote it\)/);
    const alone = await flash([
      ...b.v(),
      "--json",
      "write-flash",
      b.big,
      "--addr",
      "0x11000",
      "--restore-outside",
    ]);
    refused(alone, "USAGE", /--restore-outside only applies to --resume/);
    same(await b.chip(), before, "the chip");
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("the backup an unfinished job reused is never pruned by a later job", async () => {
  const b = await bench();
  try {
    await (await createVirtualChip({ chip: "bk7231n", state: b.state })).save();
    const small = `${b.dir}/small.bin`;
    await Deno.writeFile(small, noise(8192, 21));
    assert.equal((await flash([...b.v(), "write-flash", small, "--addr", "0x100000"])).code, 0);
    const cut = await flash([
      ...b.v(),
      "--faults",
      DISCONNECT_REUSED,
      "write-flash",
      b.big,
      "--addr",
      "0x11000",
    ]);
    assert.equal(cut.code, 10, cut.stderr);
    assert.match(cut.stderr, /backup: reusing .*\.after\.bin/);
    const { journal } = await backupOf(b);
    const reused = JSON.parse(await Deno.readTextFile(journal)).backup as string;
    assert.match(reused, /\.after\.bin$/);
    const cfgPath = `${b.dir}/cfg.bin`;
    await Deno.writeFile(cfgPath, noise(8192, 99));
    // a later job saves its own after-image and prunes older ones of this chip
    assert.equal((await flash([...b.v(), "write-flash", cfgPath, "--addr", "0x1f8000"])).code, 0);
    await Deno.stat(reused);
    const r = await flash([
      ...b.v(),
      "write-flash",
      b.big,
      "--addr",
      "0x11000",
      "--resume",
      "--restore-outside",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /writing back 2 sector\(s\) outside the job/);
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("a state file served by `emulate` is locked against flash commands for as long as it serves", async () => {
  const { main: emulate } = await import("../cli/emulate.ts");
  const dir = await Deno.makeTempDir({ prefix: "bekenlab-lock-" });
  try {
    const state = `${dir}/S`;
    let stop: () => void = () => {};
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    let address: (line: string) => void = () => {};
    const first = new Promise<string>((resolve) => (address = resolve));
    const serving = emulate(["--tcp", "127.0.0.1:0", "--pace", "none", "--state", state], {
      io: { stdout: (t) => address(t.trim()), stderr: () => {}, stderrIsTTY: false },
      stop: stopped,
    });
    await first;
    const r = await flash(["--json", "--port", "virtual:bk7231n", "--state", state, "chip-info"]);
    refused(r, "PORT", /S is in use by another process$/);
    stop();
    assert.equal(await serving, 0);
    assert.equal((await flash(["--port", "virtual:bk7231n", "--state", state, "chip-info"])).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
