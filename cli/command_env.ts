/**
 * What every CLI command shares: its environment ({@link CommandEnv}), the options each write or
 * erase job gets, the flasher context wired to the progress bar and stderr, the bootloader
 * confirmation, and printing the result with its accounting. The commands are in `commands.ts`,
 * `restore_rf.ts` and `obk_config.ts`.
 *
 * @module
 */

import { FlashError } from "../core/errors.ts";
import { crcHex } from "../core/flasher/sidecar.ts";
import { createContext, type FlasherContext, type FlasherEvent } from "../core/flasher/context.ts";
import { hex, humanSize } from "../core/flasher/range.ts";
import { DirectoryStore } from "../core/flasher/files.ts";
import { accountingJson, accountingLines, type CommandCost } from "./accounting.ts";
import type { Output } from "./output.ts";
import type { ProgressView } from "./progress.ts";
import type { Session } from "./session.ts";

/** What every command needs besides the session. */
export interface CommandEnv {
  out: Output;
  progress: ProgressView;
  /** Wall time, for backup names. */
  now: () => Date;
  signal?: AbortSignal;
  /** Backup directory. */
  backupDir: string;
  noBackup: boolean;
  overwriteBootloader: boolean;
  /** `--yes`: confirmations are answered yes. */
  yes: boolean;
  /** Ask the user a yes/no question; resolves false when nobody can answer. */
  confirm: (question: string) => Promise<boolean>;
  /** Overlap read requests with replies (`--no-read-ahead` turns it off). */
  readAhead?: boolean;
  /** `--skip-key-check`: write an image built for another key (with a note). */
  skipKeyCheck?: boolean;
  /** Skip reading regions the chip's CRC shows to be erased (`--no-sparse` turns it off). */
  sparse?: boolean;
}

/**
 * Whether the write or erase of `[addr, addr+size)` may touch the bootloader window: always
 * with --overwrite-bootloader; in SPI mode (recovery) after a confirmation or --yes.
 */
export async function bootloaderAllowed(
  s: Session,
  env: CommandEnv,
  verb: string,
  addr: number,
  size: number,
): Promise<boolean> {
  if (env.overwriteBootloader) return true;
  if (s.kind !== "spi" || addr >= s.bootloaderEnd) return false;
  if (env.yes) return true;
  const range = `${hex(addr)}..${hex(Math.min(addr + size, s.bootloaderEnd) - 1)}`;
  if (await env.confirm(`This will ${verb} ${range}, the bootloader region. Continue? [y/N] `)) return true;
  throw new FlashError(
    "BOOTLOADER_GUARD",
    `not confirmed: ${verb} of ${range}, the bootloader region`,
    "pass --yes to confirm (over SPI this is how a chip with a broken bootloader is recovered)",
  );
}

/**
 * What every CLI write or erase passes its job: the bootloader window, the backup directory as
 * the store, the chip's names for backups, the wall time, `--no-backup`, and the after-image.
 */
export function jobOptions(s: Session, env: CommandEnv): {
  bootloaderEnd: number;
  store: DirectoryStore;
  identity: Session["identity"];
  createdAt: Date;
  noBackup: boolean;
  saveResult: true;
} {
  return {
    bootloaderEnd: s.bootloaderEnd,
    store: new DirectoryStore(env.backupDir),
    identity: s.identity,
    createdAt: env.now(),
    noBackup: env.noBackup,
    saveResult: true,
  };
}

/** The flasher context of a session, wired to the progress bar and stderr. */
export async function contextFor(s: Session, env: CommandEnv): Promise<FlasherContext> {
  return await createContext(s.target, s.clock, {
    baud: s.baud,
    onProgress: env.progress.listener,
    onEvent: (e) => reportEvent(env.out, e),
    signal: env.signal,
    readAhead: env.readAhead ?? true,
    sparse: env.sparse ?? true,
  });
}

/** A flasher event as a line on stderr (a note, or a debug line with --verbose). */
function reportEvent(out: Output, e: FlasherEvent): void {
  switch (e.type) {
    case "retry":
      out.note(`retry ${e.attempt}/${e.of}: ${e.op} at ${hex(e.addr)}: ${e.reason}`);
      break;
    case "unprotect":
      out.note(
        `flash was protected: status register ${e.report.before.map((b) => hex(b)).join("/")} -> ${
          e.report.after.map((b) => hex(b)).join("/")
        }`,
      );
      break;
    case "backup":
      out.note(
        e.reused
          ? `backup: reusing ${e.location} (${humanSize(e.size)}, CRC-32 ${
            crcHex(e.crc32)
          }): the chip still holds exactly that, nothing read`
          : `backup: ${e.location} (${humanSize(e.size)}, CRC-32 ${crcHex(e.crc32)})`,
      );
      break;
    case "notice":
      out.note(e.message);
      break;
    case "plan":
      out.debug(
        `${e.op}: ${e.changed} sector(s) to change, ${e.unchanged} already match; ${e.blocks} 64 KiB + ${e.sectors} 4 KiB erases`,
      );
      break;
    case "note":
      out.debug(e.message);
      break;
  }
}

/** Print the result on stdout, with its `accounting` object, and the accounting on stderr. */
export function finish(
  s: Session,
  env: CommandEnv,
  fields: Record<string, unknown>,
  human: string[],
  cost: CommandCost = {},
): void {
  env.progress.stop();
  env.out.result({ ...fields, accounting: accountingJson(s, cost) }, human);
  for (const line of accountingLines(s, cost)) env.out.note(line);
}
