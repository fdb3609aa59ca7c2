/**
 * Kill `write-flash` at random moments and finish with `write-flash --resume`.
 *
 * Each round: a virtual chip in a `--state` file (which follows every flash change, so a
 * killed process leaves the chip as far as it got), a random image, then `write-flash` run as
 * a subprocess and SIGKILLed after a random delay (one to three times, the later runs already
 * with `--resume`), then a last `write-flash --resume` that must exit 0. The state file must
 * then hold the image, nothing else may have changed, and every backup must equal the chip as
 * it was before the first run.
 *
 * ```
 * deno run -A tests/fuzz/kill_resume.ts --rounds 30 --seed 1
 * ```
 *
 * @module
 */

import { chipById } from "../../core/chips/profiles.ts";
import { padToSectors } from "../../core/flasher/write.ts";
import { flashPartFor } from "../../core/spi/jedec.ts";
import { defaultImage } from "../../emulator/image.ts";
import { Rng } from "../../emulator/rng.ts";
import { decodeState, encodeState, toHex } from "../../emulator/state.ts";
import { efuseFromKey } from "../../emulator/virtual.ts";

const CLI = new URL("../../cli/flash.ts", import.meta.url).pathname;
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "--allow-sys"];
const CHIPS = ["bk7231n", "bk7231t", "bk7231u", "bk7238", "bk7252"];

/** Where a kill landed: before the journal existed, while writing, or after the job ended. */
export type KillPhase = "before-journal" | "mid-write" | "finished";

/** What one round did. */
export interface RoundReport {
  seed: number;
  chip: string;
  addr: number;
  size: number;
  /** Wall-clock ms after which each killed run was killed, and its exit state. */
  kills: { afterMs: number; phase: KillPhase }[];
  /** Exit status of the final `--resume`. */
  exit: number;
  /** Last lines of its output. */
  output: string;
  /** Broken promises; empty on success. */
  violations: string[];
}

async function runCli(
  args: string[],
  killAfterMs?: number,
): Promise<{ code: number; out: string; killed: boolean }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, killAfterMs);
  const result = await child.output();
  clearTimeout(timer);
  const out = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
  return { code: result.code, out, killed: killed && result.signal === "SIGKILL" };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function journalPhase(dir: string): Promise<KillPhase> {
  const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
  for (const e of entries) {
    if (!e.name.endsWith(".journal.json")) continue;
    const j = JSON.parse(await Deno.readTextFile(`${dir}/${e.name}`));
    return j.state === "verified" ? "finished" : "mid-write";
  }
  return "before-journal";
}

/**
 * One round in a fresh temporary directory (removed afterwards). `jobMs` is the wall time an
 * uninterrupted job takes; kills land in [0.3, 1.1] × jobMs.
 */
export async function killResumeRound(seed: number, jobMs: number, killCount?: number): Promise<RoundReport> {
  const rng = new Rng(seed);
  const chip = CHIPS[rng.int(CHIPS.length)];
  const profile = chipById(chip)!;
  const dir = await Deno.makeTempDir({ prefix: "bekenlab-kill-" });
  try {
    const part = flashPartFor(profile.defaultFlashId);
    const pre = defaultImage(profile, part.size);
    const state = `${dir}/chip.state`;
    await Deno.writeFile(
      state,
      encodeState({
        meta: {
          chip,
          flashId: toHex(part.id),
          size: part.size,
          sr: 0,
          efuse: toHex(efuseFromKey(profile.key?.words ?? [0, 0, 0, 0], Math.max(profile.efuseSize, 16))),
        },
        flash: pre,
      }),
    );
    const addr = 0x11000 + rng.int(64) * 0x1000;
    const size = 0x1000 + rng.int(0x40000);
    const image = rng.fill(new Uint8Array(size));
    await Deno.writeFile(`${dir}/app.bin`, image);
    const common = [
      "--port",
      `virtual:${chip}`,
      "--state",
      state,
      "--baud",
      "921600",
      "write-flash",
      `${dir}/app.bin`,
      "--addr",
      `0x${addr.toString(16)}`,
      "--backup-dir",
      `${dir}/backups`,
    ];
    const kills: RoundReport["kills"] = [];
    const drawn = 1 + rng.int(3);
    const rounds = killCount ?? drawn;
    for (let k = 0; k < rounds; k++) {
      const afterMs = Math.round((0.3 + 0.8 * rng.float()) * jobMs);
      const r = await runCli(k === 0 ? common : [...common, "--resume"], afterMs);
      kills.push({ afterMs, phase: r.killed ? await journalPhase(`${dir}/backups`) : "finished" });
    }
    const last = await runCli([...common, "--resume"]);
    const violations: string[] = [];
    if (last.code !== 0) {
      violations.push(`--resume exited ${last.code}: ${last.out.trim().split("\n").slice(-3).join(" | ")}`);
    }
    const after = decodeState(await Deno.readFile(state)).flash;
    const expected = padToSectors(image);
    if (!equal(after.subarray(addr, addr + expected.length), expected)) {
      violations.push("the chip does not hold the image after --resume");
    }
    const outsideBefore = equal(after.subarray(0, addr), pre.subarray(0, addr));
    const outsideAfter = equal(after.subarray(addr + expected.length), pre.subarray(addr + expected.length));
    if (!outsideBefore || !outsideAfter) violations.push("flash outside the image changed");
    const backups = await Array.fromAsync(Deno.readDir(`${dir}/backups`)).catch(() => []);
    for (const e of backups) {
      if (!e.name.endsWith(".bin")) continue;
      const b = await Deno.readFile(`${dir}/backups/${e.name}`);
      // an after-image is the flash after a verified job, saved for the next job to reuse
      if (e.name.endsWith(".after.bin")) {
        if (!equal(b, after)) violations.push(`after-image ${e.name} differs from the chip after the job`);
      } else if (!equal(b, pre)) violations.push(`backup ${e.name} differs from the chip before the job`);
    }
    return {
      seed,
      chip,
      addr,
      size,
      kills,
      exit: last.code,
      output: last.out.trim().split("\n").slice(-2).join(" | "),
      violations,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Wall time of one uninterrupted job (process start included), to aim the kills. */
export async function measureJobMs(seed = 1): Promise<number> {
  const t0 = performance.now();
  const r = await killResumeRound(seed, 0, 0);
  if (r.violations.length) throw new Error(`an uninterrupted job failed: ${r.violations.join("; ")}`);
  return performance.now() - t0;
}

if (import.meta.main) {
  const args = Deno.args;
  const get = (k: string, d: number) => {
    const i = args.indexOf(`--${k}`);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  const rounds = get("rounds", 20);
  const seed = get("seed", 1);
  const jobMs = await measureJobMs();
  console.log(`one uninterrupted job (spawn included): ${Math.round(jobMs)} ms`);
  let bad = 0;
  for (let i = 0; i < rounds; i++) {
    const r = await killResumeRound(seed * 1000 + i, jobMs);
    if (r.violations.length) bad++;
    console.log(
      `round ${i}: ${r.chip} ${r.size} B at 0x${r.addr.toString(16)}, killed at ${
        r.kills.map((k) => `${k.afterMs} ms (${k.phase})`).join(", ")
      } → resume exit ${r.exit}${r.violations.length ? `; VIOLATIONS: ${r.violations.join("; ")}` : ""}`,
    );
  }
  console.log(`${rounds} rounds, ${bad} with violations`);
  Deno.exit(bad ? 1 : 0);
}
