/**
 * The UART figures of the benchmark, each measured through the CLI on a virtual BK7231N (a
 * `--state` file keeps the chip between commands, a temporary `--backup-dir` holds backups):
 * (a) a whole-flash read at 921 600 and 2 000 000 baud against the wire floor; (b) writing an
 * app image where every sector differs against the wire floor plus the flash's own erase and
 * program time; (c) writing an image with 5 % of its sectors changed against (b).
 *
 * @module
 */

import { join } from "node:path";
import { DEFAULT_TIMING, wireMs } from "../core/timing.ts";
import { type CliJson, figuresOf, type OpFigures, runCli } from "./cli_run.ts";

/** What (a) measured at one baud rate. */
export interface BackupFigure {
  baud: number;
  bytes: number;
  modelledMs: number;
  floorMs: number;
  ratio: number;
  kibPerSec: number;
  roundTrips: number;
}

/** Start of the application region, the usual write address. */
const APP = 0x11000;
const SECTOR = 0x1000;
const BLOCK = 0x10000;

/** Deterministic bytes (xorshift), so every run writes the same images. */
export function pseudoRandom(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** (a) `read-flash` of the whole chip. */
export async function backupFigure(dir: string, baud: number): Promise<BackupFigure> {
  const r = await runCli([
    "--port",
    "virtual:bk7231n",
    "--state",
    join(dir, `read-${baud}.state`),
    "--baud",
    String(baud),
    // every byte: the default image is mostly blank, and sparse reads are measured on real dumps (--corpus)
    "--no-sparse",
    "read-flash",
    "--out",
    join(dir, `backup-${baud}.bin`),
  ]);
  const op = figuresOf(r).operation;
  return {
    baud,
    bytes: op.payloadBytes,
    modelledMs: op.elapsedMs,
    floorMs: op.wireFloorMs!,
    ratio: op.elapsedMs / op.wireFloorMs!,
    kibPerSec: op.kibPerSec!,
    roundTrips: op.roundTrips,
  };
}

/** One write job as the CLI reported it. */
export interface WriteFigure {
  /** Backup step plus the write (erase, program, checks, final verify). */
  modelledMs: number;
  backupMs: number;
  backupReused: boolean;
  writeMs: number;
  changed: number;
  blockErases: number;
  sectorErases: number;
  operation: OpFigures;
}

function writeFigure(r: CliJson): WriteFigure {
  const { operation, backup } = figuresOf(r);
  const backupMs = backup?.elapsedMs ?? 0;
  return {
    modelledMs: operation.elapsedMs + backupMs,
    backupMs,
    backupReused: backup?.reused ?? false,
    writeMs: operation.elapsedMs,
    changed: r.changed as number,
    blockErases: r.blockErases as number,
    sectorErases: r.sectorErases as number,
    operation,
  };
}

/** The lower bound of writing `bytes` at `addr` on a chip where every sector differs. */
export function idealWriteMs(addr: number, bytes: number, baud: number): { wireMs: number; flashMs: number } {
  const t = DEFAULT_TIMING;
  let flashMs = 0;
  for (let a = addr; a < addr + bytes;) {
    if (a % BLOCK === 0 && a + BLOCK <= addr + bytes) {
      flashMs += t.blockEraseMs;
      a += BLOCK;
    } else {
      flashMs += t.sectorEraseMs;
      a += SECTOR;
    }
  }
  flashMs += Math.ceil(bytes / 256) * t.pageProgramMs;
  return { wireMs: wireMs(bytes, baud), flashMs };
}

/** What (b) and (c) measured. */
export interface ReflashFigures {
  baud: number;
  imageBytes: number;
  /** The very first write to an unknown chip: a full backup read first. */
  firstWrite: WriteFigure;
  /** (b) every sector differs; a backup of the chip is on disk. */
  fullWrite: WriteFigure;
  fullIdeal: { wireMs: number; flashMs: number };
  freshWriteRatio: number;
  /** (c) 5 % of the sectors differ. */
  incremental: WriteFigure;
  incrementalSpeedup: number;
}

/** (b) and (c): three writes of the app region in a row, like a develop–flash loop. */
export async function reflashFigures(dir: string, baud = 921600): Promise<ReflashFigures> {
  const size = 0x200000 - APP;
  const state = join(dir, "loop.state");
  const image = join(dir, "app.bin");
  const write = async (data: Uint8Array) => {
    await Deno.writeFile(image, data);
    return writeFigure(
      await runCli([
        "--port",
        "virtual:bk7231n",
        "--state",
        state,
        "--baud",
        String(baud),
        "--backup-dir",
        join(dir, "backups"),
        "write-flash",
        image,
        "--addr",
        `0x${APP.toString(16)}`,
      ]),
    );
  };
  const first = await write(pseudoRandom(size, 1));
  const b = pseudoRandom(size, 2);
  const full = await write(b);
  const sectors = size / SECTOR;
  const changed = new Set<number>();
  const pick = pseudoRandom(4 * sectors, 3);
  for (let i = 0; changed.size < Math.round(sectors * 0.05); i += 4) {
    changed.add(((pick[i] << 16) | (pick[i + 1] << 8) | pick[i + 2]) % sectors);
  }
  const c = b.slice();
  for (const s of changed) c[s * SECTOR + 100] ^= 0xa5;
  const incremental = await write(c);
  const fullIdeal = idealWriteMs(APP, size, baud);
  return {
    baud,
    imageBytes: size,
    firstWrite: first,
    fullWrite: full,
    fullIdeal,
    freshWriteRatio: full.modelledMs / (fullIdeal.wireMs + fullIdeal.flashMs),
    incremental,
    incrementalSpeedup: full.modelledMs / incremental.modelledMs,
  };
}
