/**
 * Advisory locks on files a job owns (a virtual chip's state file, a backup directory with its
 * journals), so that a second process working on the same ones is refused instead of both
 * reporting success over each other's writes.
 *
 * The lock is taken on a small companion file (`<file>.lock`, or `.bekenlab.lock` inside a
 * directory) rather than the file itself: the state file is replaced by a rename on every full
 * save, and a lock belongs to the old inode, not the name. The companion is left in place on
 * release; deleting it would let a process that opened the old inode and one that created a new
 * one both hold "the" lock.
 *
 * The lock is Deno's non-blocking `FsFile.tryLock(true)`. On Linux that is `flock(LOCK_EX |
 * LOCK_NB)`: the tests hold a lock here and watch `flock(1)` (which calls flock(2), whose locks do
 * not interact with fcntl record locks) fail on the same file, and succeed after release. On
 * macOS and Windows it is Deno's lock of the same name (an exclusive whole-file lock that fails at
 * once), not run here. The lock belongs to the open file, so two opens in one process also
 * exclude each other.
 *
 * @module
 */

import { FlashError } from "../errors.ts";

/** A held lock; release it when the job ends (closing the file releases it too). */
export interface HeldLock {
  /** The file or directory the lock protects. */
  readonly path: string;
  /** The companion file that carries the OS lock. */
  readonly lockFile: string;
  release(): void;
}

/** The companion lock file of `path`: inside it when it is a directory, beside it otherwise. */
export function lockFileOf(path: string, isDirectory: boolean): string {
  return isDirectory ? `${path.replace(/[\\/]+$/, "")}/.bekenlab.lock` : `${path}.lock`;
}

/** The one-line cause and remedy when another process holds `path`. */
export function inUseError(path: string): FlashError {
  return new FlashError(
    "PORT",
    `${path} is in use by another process`,
    "wait for the other bekenlab command using it to finish (or stop it), then run this one again",
  );
}

/**
 * Take an exclusive advisory lock on `path` without waiting; throws "<path> is in use by
 * another process" when another open file holds it. A directory is created when missing.
 *
 * @example
 * ```ts
 * const lock = await lockPath("chip.state", { directory: false });
 * try {
 *   // use chip.state: no other bekenlab process can take it meanwhile
 * } finally {
 *   lock.release();
 * }
 * ```
 */
export async function lockPath(path: string, opts: { directory: boolean }): Promise<HeldLock> {
  const lockFile = lockFileOf(path, opts.directory);
  let file: Deno.FsFile;
  try {
    if (opts.directory) await Deno.mkdir(path, { recursive: true });
    file = await Deno.open(lockFile, { read: true, write: true, create: true });
  } catch (e) {
    throw new FlashError(
      "USAGE",
      `cannot lock ${path}: ${e instanceof Error ? e.message : String(e)}`,
      opts.directory
        ? "pass --backup-dir a writable directory"
        : "pass --state a path in an existing, writable directory",
      { cause: e },
    );
  }
  let held: boolean;
  try {
    held = await file.tryLock(true);
  } catch (e) {
    file.close();
    throw new FlashError(
      "USAGE",
      `cannot lock ${path}: ${e instanceof Error ? e.message : String(e)}`,
      "use a local file system that supports locks for --state and --backup-dir",
      { cause: e },
    );
  }
  if (!held) {
    file.close();
    throw inUseError(path);
  }
  let open = true;
  return {
    path,
    lockFile,
    release() {
      if (!open) return;
      open = false;
      file.close();
    },
  };
}
