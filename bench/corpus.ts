/**
 * `deno task bench --corpus <dir> [--json]`: full backups of real flash dumps on the emulator.
 *
 * Every whole-flash `.bin` of the directory (a power-of-two size from 256 KiB to 16 MiB) is
 * loaded into a virtual chip with a flash part of its size, and backed up the way a write
 * backs a chip up first (`saveBackup`, into memory) at 921 600 and 2 000 000 baud, at the
 * calibrated chip CRC speed and at both ends of its range (the CRC speed is passed to the
 * emulator and to the planner alike). Each backup is compared byte for byte with its dump.
 * Reported per dump and as a median: modelled time / wire floor of the whole flash (size × 10
 * bits / baud), for the sparse backup and for reading every byte (`sparse: false`, today's
 * path). A re-flash figure writes a 1 MiB app at 0x11000 over each dump (sparse backup first)
 * against the same job reading every byte and erasing every changed sector, and against a
 * full backup plus the floor of a full write (wire + erase + program time).
 *
 * The virtual chip is the one the dump came from where the directory says so: a `README.md`
 * whose table has a row `| <file>.bin | <chip> ... |` naming a BK72xx part in its second cell
 * (a BK7231T dump then meets the T/U loader, with its read-ahead and its re-protection after
 * every CRC). A dump the README does not name is served as a BK7231N.
 *
 * @module
 */

import { join } from "node:path";
import { chipById, type ChipProfile } from "../core/chips/profiles.ts";
import { saveBackup } from "../core/flasher/backup.ts";
import { MemoryStore } from "../core/flasher/store.ts";
import { createContext, type FlasherContext } from "../core/flasher/context.ts";
import { writeFlash } from "../core/flasher/write.ts";
import { DEFAULT_TIMING, wireMs } from "../core/timing.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { createVirtualChip } from "../emulator/virtual.ts";
import { idealWriteMs, pseudoRandom } from "./uart_jobs.ts";

/**
 * Chip CRC speeds (bytes/s): the calibrated value and the ends of its plausible range (a real
 * BK7231N finishes a 2 MiB CRC in 2–3 s; a hard bound from a real log is above 0.42 MB/s).
 */
export const CRC_SPEEDS = { calibrated: 800_000, low: 420_000, high: 1_500_000 } as const;
/** The baud rates of the figures. */
export const CORPUS_BAUDS = [921600, 2_000_000] as const;
/** Where the re-flash figure writes its app. */
const APP = 0x11000;
/** Size of the re-flash figure's app image. */
const APP_SIZE = 0x100000;

type Speed = keyof typeof CRC_SPEEDS;

/** One backup of one dump. */
export interface CorpusRun {
  baud: number;
  crc: Speed;
  /** Modelled time of the sparse backup / wire floor of the whole flash. */
  ratio: number;
  /** The same, reading every byte. */
  fullRatio: number;
  /** Bytes not read. */
  notRead: number;
  /** Chip CRCs the map and its confirmations issued. */
  crcs: number;
}

/** What one dump measured. */
export interface CorpusDump {
  file: string;
  /** The chip mode it was served as. */
  chip: string;
  size: number;
  /** Share of 4 KiB sectors that are entirely 0xFF. */
  erasedSectors: number;
  runs: CorpusRun[];
  /** Re-flash of a 1 MiB app at 0x11000 at 921 600 baud, per CRC speed. */
  reflash: {
    crc: Speed;
    /** The whole job, backup included. */
    modelledMs: number;
    backupMs: number;
    /** The backup it took first skipped erased regions. */
    sparseBackup: boolean;
    /** The same job reading every byte and erasing every changed sector (`sparse: false`). */
    fullMs: number;
    /** A full backup (every byte) plus the floor of a full write (wire + erase + program). */
    floorMs: number;
  }[];
}

/** The `corpus` object of `--json` (documented in the README). */
export interface CorpusSummary {
  dumps: number;
  median921600: number;
  max921600: number;
  median2000000: number;
  max2000000: number;
  /** The same figures at both ends of the CRC speed range. */
  low: Record<string, number>;
  high: Record<string, number>;
  /** Reading every byte (today's backup), at the calibrated CRC speed. */
  full: Record<string, number>;
  /** Re-flash (sparse backup first) / the same job reading every byte and erasing every sector, 921 600 baud. */
  reflashMedian: number;
  reflashMax: number;
  /** Re-flash / (full backup + the floor of a full write: wire, erase and program time). */
  reflashFloorMedian: number;
  reflashFloorMax: number;
  crcBytesPerSec: typeof CRC_SPEEDS;
  perDump: { file: string; chip: string; erasedSectors: number; ratios: Record<string, number> }[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** The chip a dump is served as when its directory does not say. */
const DEFAULT_CHIP = "bk7231n";

async function open(
  image: Uint8Array,
  chip: ChipProfile,
  baud: number,
  crcBytesPerSec: number,
  sparse: boolean,
) {
  const bits = Math.log2(image.length);
  const v = await createVirtualChip({
    chip: chip.id,
    image,
    flashId: [0xeb, 0x60, bits],
    timing: { crcBytesPerSec },
  });
  const link = v.link();
  const { target } = await openUartTarget(link, { chip, baud });
  const ctx = await createContext(target, link.clock, {
    baud,
    sparse,
    timing: { ...DEFAULT_TIMING, crcBytesPerSec },
  });
  return { v, ctx, target, clock: link.clock };
}

const identityOf = (chip: ChipProfile) => ({ chip: chip.id.toUpperCase(), flashId: "eb6015", key: null });

/** A backup into memory, checked against the dump; its modelled time covers every step. */
async function backupRun(ctx: FlasherContext, chip: ChipProfile, image: Uint8Array, file: string) {
  const identity = identityOf(chip);
  const store = new MemoryStore();
  const t0 = ctx.clock.now();
  const data = new Uint8Array(image.length);
  const info = await saveBackup(
    ctx,
    { store, identity, createdAt: new Date(Date.UTC(2026, 0, 1)) },
    (chunk, offset) => data.set(chunk, offset),
  );
  const stored = await store.get(info.location);
  if (!stored.every((b, i) => b === image[i]) || !data.every((b, i) => b === image[i])) {
    throw new Error(`${file}: the backup differs from the dump`);
  }
  return {
    elapsedMs: ctx.clock.now() - t0,
    notRead: info.accounting.notRead,
    roundTrips: info.accounting.roundTrips,
  };
}

/** Whether `size` is a whole flash: a power of two from 256 KiB to 16 MiB. */
export function isWholeFlash(size: number): boolean {
  return size >= 0x40000 && size <= 0x1000000 && (size & (size - 1)) === 0;
}

/** Measure one dump, served as `chipId` (default BK7231N). */
export async function measureDump(
  file: string,
  image: Uint8Array,
  chipId = DEFAULT_CHIP,
): Promise<CorpusDump> {
  const chip = chipById(chipId);
  if (!chip) throw new Error(`${file}: no chip mode ${chipId}`);
  const identity = identityOf(chip);
  let erased = 0;
  for (let a = 0; a < image.length; a += 4096) {
    if (image.subarray(a, a + 4096).every((b) => b === 0xff)) erased++;
  }
  const runs: CorpusRun[] = [];
  const floor = (baud: number) => wireMs(image.length, baud);
  for (const baud of CORPUS_BAUDS) {
    for (const crc of Object.keys(CRC_SPEEDS) as Speed[]) {
      const a = await open(image, chip, baud, CRC_SPEEDS[crc], true);
      const sparse = await backupRun(a.ctx, chip, image, file);
      await a.target.close();
      const b = await open(image, chip, baud, CRC_SPEEDS[crc], false);
      const full = await backupRun(b.ctx, chip, image, file);
      await b.target.close();
      runs.push({
        baud,
        crc,
        ratio: sparse.elapsedMs / floor(baud),
        fullRatio: full.elapsedMs / floor(baud),
        notRead: sparse.notRead?.bytes ?? 0,
        crcs: sparse.roundTrips - Math.ceil((image.length - (sparse.notRead?.bytes ?? 0)) / 4096),
      });
    }
  }
  const reflash: CorpusDump["reflash"] = [];
  const app = pseudoRandom(APP_SIZE, 7);
  for (const crc of Object.keys(CRC_SPEEDS) as Speed[]) {
    const baud = 921600;
    const job = async (sparse: boolean) => {
      const a = await open(image, chip, baud, CRC_SPEEDS[crc], sparse);
      const t0 = a.clock.now();
      const r = await writeFlash(a.ctx, app, {
        addr: APP,
        store: new MemoryStore(),
        identity,
        createdAt: new Date(Date.UTC(2026, 0, 1)),
      });
      const ms = a.clock.now() - t0;
      const flash = a.v.nor.read(APP, APP_SIZE);
      if (!flash.every((x, i) => x === app[i])) throw new Error(`${file}: the re-flash left different bytes`);
      await a.target.close();
      return { ms, r };
    };
    const sparse = await job(true);
    const full = await job(false);
    const fullBackupMs = runs.find((x) => x.baud === baud && x.crc === crc)!.fullRatio * floor(baud);
    const ideal = idealWriteMs(APP, APP_SIZE, baud);
    reflash.push({
      crc,
      modelledMs: sparse.ms,
      backupMs: sparse.r.backupRecord?.accounting.elapsedMs ?? 0,
      sparseBackup: (sparse.r.backupRecord?.accounting.notRead?.bytes ?? 0) > 0,
      fullMs: full.ms,
      floorMs: fullBackupMs + ideal.wireMs + ideal.flashMs,
    });
  }
  return {
    file,
    chip: chip.id,
    size: image.length,
    erasedSectors: erased / (image.length / 4096),
    runs,
    reflash,
  };
}

/** The `corpus` object from the dumps' figures. */
export function summarise(dumps: CorpusDump[]): CorpusSummary {
  const figs = (speed: Speed, key: "ratio" | "fullRatio") => {
    const out: Record<string, number> = {};
    for (const baud of CORPUS_BAUDS) {
      const xs = dumps.map((d) => d.runs.find((r) => r.baud === baud && r.crc === speed)![key]);
      out[`median${baud}`] = round(median(xs));
      out[`max${baud}`] = round(Math.max(...xs));
    }
    return out;
  };
  const cal = figs("calibrated", "ratio");
  const cal0 = (d: CorpusDump) => d.reflash.find((x) => x.crc === "calibrated")!;
  const re = dumps.map((d) => cal0(d).modelledMs / cal0(d).fullMs);
  const reFloor = dumps.map((d) => cal0(d).modelledMs / cal0(d).floorMs);
  return {
    dumps: dumps.length,
    median921600: cal.median921600,
    max921600: cal.max921600,
    median2000000: cal.median2000000,
    max2000000: cal.max2000000,
    low: figs("low", "ratio"),
    high: figs("high", "ratio"),
    full: figs("calibrated", "fullRatio"),
    reflashMedian: round(median(re)),
    reflashMax: round(Math.max(...re)),
    reflashFloorMedian: round(median(reFloor)),
    reflashFloorMax: round(Math.max(...reFloor)),
    crcBytesPerSec: CRC_SPEEDS,
    perDump: dumps.map((d) => ({
      file: d.file,
      chip: d.chip,
      erasedSectors: round(d.erasedSectors),
      ratios: Object.fromEntries(d.runs.map((r) => [`${r.crc}${r.baud}`, round(r.ratio)])),
    })),
  };
}

const round = (x: number) => Number(x.toFixed(4));

/**
 * The chip each dump of a corpus README's table came from: rows `| <file>.bin | <chip> ... |`
 * whose second cell names a BK72xx part this tool has a mode for (the first such name in the
 * cell, so "BL2028N (BK7231M-class)" is a BK7231M).
 */
export function chipsFromReadme(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 4 || !cells[1].endsWith(".bin")) continue;
    const part = /\bBK72\d\d[A-Z]?\b/i.exec(cells[2]);
    const chip = part && chipById(part[0]);
    if (chip) out.set(cells[1], chip.id);
  }
  return out;
}

/** The whole-flash dumps of `dir`, by name, with the chip the directory's README names. */
export async function loadCorpus(dir: string): Promise<{ file: string; image: Uint8Array; chip: string }[]> {
  const readme = await Deno.readTextFile(join(dir, "README.md")).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return "";
    throw e;
  });
  const chips = chipsFromReadme(readme);
  const out: { file: string; image: Uint8Array; chip: string }[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!(e.isFile || e.isSymlink) || !e.name.endsWith(".bin")) continue;
    const image = await Deno.readFile(join(dir, e.name));
    if (isWholeFlash(image.length)) {
      out.push({ file: e.name, image, chip: chips.get(e.name) ?? DEFAULT_CHIP });
    }
  }
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

/** Run the corpus bench on `dir`; prints a table (or nothing with `json`) and returns the summary. */
export async function corpusBench(dir: string, json: boolean): Promise<CorpusSummary> {
  const say = (line = "") => {
    if (!json) console.log(line);
  };
  const corpus = await loadCorpus(dir);
  if (corpus.length === 0) {
    throw new Error(`no whole-flash .bin (power-of-two size, 256 KiB..16 MiB) in ${dir}`);
  }
  say(
    `corpus: ${corpus.length} whole-flash dump(s) in ${dir}, each served as the chip the directory's README names (BK7231N where it names none); backup into memory`,
  );
  say(
    `  chip CRC ${CRC_SPEEDS.calibrated / 1e6} MB/s (range ${CRC_SPEEDS.low / 1e6}–${
      CRC_SPEEDS.high / 1e6
    }); ratio = modelled time / wire floor of the whole flash`,
  );
  const dumps: CorpusDump[] = [];
  for (const { file, image, chip } of corpus) dumps.push(await measureDump(file, image, chip));
  const sum = summarise(dumps);
  const cell = (d: CorpusDump, baud: number, crc: Speed, k: "ratio" | "fullRatio" = "ratio") =>
    d.runs.find((r) => r.baud === baud && r.crc === crc)![k].toFixed(3);
  say();
  say(
    "| dump | chip | erased 4 KiB | 921600: sparse (0.42 / 0.8 / 1.5 MB/s) | every byte | 2000000: sparse | every byte |",
  );
  say("| --- | --- | --- | --- | --- | --- | --- |");
  for (const d of dumps) {
    say(
      `| ${d.file} | ${d.chip} | ${(d.erasedSectors * 100).toFixed(1)} % | ${cell(d, 921600, "low")} / ${
        cell(d, 921600, "calibrated")
      } / ${cell(d, 921600, "high")} | ${cell(d, 921600, "calibrated", "fullRatio")} | ${
        cell(d, 2_000_000, "low")
      } / ${cell(d, 2_000_000, "calibrated")} / ${cell(d, 2_000_000, "high")} | ${
        cell(d, 2_000_000, "calibrated", "fullRatio")
      } |`,
    );
  }
  say(
    `| median | | | ${sum.low.median921600} / ${sum.median921600} / ${sum.high.median921600} | ${sum.full.median921600} | ${sum.low.median2000000} / ${sum.median2000000} / ${sum.high.median2000000} | ${sum.full.median2000000} |`,
  );
  say(
    `| max | | | ${sum.low.max921600} / ${sum.max921600} / ${sum.high.max921600} | ${sum.full.max921600} | ${sum.low.max2000000} / ${sum.max2000000} / ${sum.high.max2000000} | ${sum.full.max2000000} |`,
  );
  say();
  say(
    "re-flash of a 1 MiB app at 0x11000 at 921600 baud: whole job (its backup, sparse when marked *) / the same job reading every byte and erasing every sector / full backup + floor of a full write",
  );
  for (const d of dumps) {
    say(
      `  ${d.file}: ${
        d.reflash.map((r) =>
          `${r.crc} ${(r.modelledMs / 1000).toFixed(1)} s (${(r.backupMs / 1000).toFixed(1)} s${
            r.sparseBackup ? "*" : ""
          }) / ${(r.fullMs / 1000).toFixed(1)} s / ${(r.floorMs / 1000).toFixed(1)} s`
        ).join("; ")
      }`,
    );
  }
  say(
    `  at the calibrated CRC speed: vs reading and erasing everything median ${sum.reflashMedian}, max ${sum.reflashMax}; vs full backup + write floor median ${sum.reflashFloorMedian}, max ${sum.reflashFloorMax}`,
  );
  return sum;
}
