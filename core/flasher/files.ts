/**
 * File access with Deno's file APIs (no FFI): the backup store on a directory, firmware images and output
 * files, with every failure turned into a one-line cause and remedy.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { FlashError } from "../errors.ts";
import type { BackupStore, StoreEntry, StoreLock, StoreWriter } from "./store.ts";
import { lockPath } from "../io/lock.ts";
import type { ByteSource } from "./source.ts";

/**
 * Backups, sidecars and journals as files in one directory (created on first use). Files
 * are written under a temporary name and renamed, so a killed process never leaves half a
 * backup under the real name.
 */
export class DirectoryStore implements BackupStore {
  /** The directory holding the entries. */
  readonly dir: string;
  /** A store in `dir` (created on first write). */
  constructor(dir: string) {
    this.dir = dir;
  }
  async put(name: string, data: Uint8Array): Promise<string> {
    await Deno.mkdir(this.dir, { recursive: true });
    const path = join(this.dir, name);
    const tmp = `${path}.tmp`;
    await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
    return path;
  }
  get(location: string): Promise<Uint8Array> {
    return Deno.readFile(location);
  }
  /** Write an entry piece by piece under a temporary name, renamed on commit. */
  async create(name: string): Promise<StoreWriter> {
    await Deno.mkdir(this.dir, { recursive: true });
    return await fileWriter(join(this.dir, name));
  }
  /** `length` bytes at `offset` of the file at `location`. */
  async read(location: string, offset: number, length: number): Promise<Uint8Array> {
    const f = await Deno.open(location, { read: true });
    try {
      return await readAt(f, offset, length);
    } finally {
      f.close();
    }
  }
  /** Delete the file at `location` (already gone is fine). */
  async remove(location: string): Promise<void> {
    try {
      await Deno.remove(location);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  /**
   * An advisory lock on the directory (`.bekenlab.lock` inside it, see core/io/lock.ts): a second
   * process, or a second job in this one, is refused with "… is in use by another process".
   */
  lock(): Promise<StoreLock> {
    return lockPath(this.dir, { directory: true });
  }
  /** The files of the directory (none when it does not exist yet). */
  async list(): Promise<StoreEntry[]> {
    const out: StoreEntry[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        if (e.isFile) out.push({ name: e.name, location: join(this.dir, e.name) });
      }
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
    return out;
  }
}

/** Up to `length` bytes at `offset` of an open file (fewer only at its end). */
async function readAt(f: Deno.FsFile, offset: number, length: number): Promise<Uint8Array> {
  await f.seek(offset, Deno.SeekMode.Start);
  const buf = new Uint8Array(length);
  let n = 0;
  while (n < length) {
    const got = await f.read(buf.subarray(n));
    if (got === null) break;
    n += got;
  }
  return n === length ? buf : buf.subarray(0, n);
}

/** A writer to `path` through `path.tmp` and a rename, so the file never exists half-written. */
async function fileWriter(path: string): Promise<StoreWriter> {
  const tmp = `${path}.tmp`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  let open = true;
  const close = () => {
    if (open) f.close();
    open = false;
  };
  return {
    async write(chunk) {
      for (let off = 0; off < chunk.length;) off += await f.write(chunk.subarray(off));
    },
    async commit() {
      close();
      await Deno.rename(tmp, path);
      return path;
    },
    async abort() {
      close();
      await Deno.remove(tmp).catch(() => {});
    },
  };
}

/** A firmware image opened for reading piece by piece; close it when done. */
export interface ImageFile extends ByteSource {
  /** Path of the image file. */
  readonly path: string;
  /** Close the file. */
  close(): void;
}

/**
 * Open a firmware image for streaming (never read whole), refusing a missing, unreadable,
 * directory or empty file with one line of cause and one of remedy.
 */
export async function openImage(path: string): Promise<ImageFile> {
  let file: Deno.FsFile;
  let size: number;
  try {
    // stat before opening: opening a FIFO blocks until something writes to it
    const st = await Deno.stat(path);
    if (st.isDirectory) {
      throw new FlashError(
        "BAD_IMAGE",
        `${path} is a directory, not an image`,
        "pass the firmware .bin file itself",
      );
    }
    if (!st.isFile) {
      throw new FlashError(
        "BAD_IMAGE",
        `image ${path} is not a regular file (a pipe, socket or device)`,
        "save the image to a file first and pass that file",
      );
    }
    file = await Deno.open(path, { read: true });
    size = (await file.stat()).size;
  } catch (e) {
    throw imageError(path, e);
  }
  if (size === 0) {
    file.close();
    throw new FlashError(
      "BAD_IMAGE",
      `image ${path} is empty (0 bytes)`,
      "pass the firmware file you meant; a download may have failed",
    );
  }
  let queue: Promise<unknown> = Promise.resolve();
  return {
    path,
    size,
    read(offset, length) {
      const next = queue.then(() => readAt(file, offset, Math.max(0, Math.min(length, size - offset))));
      queue = next.catch(() => {});
      return next;
    },
    close: () => file.close(),
  };
}

function imageError(path: string, e: unknown): FlashError {
  if (e instanceof FlashError) return e;
  if (e instanceof Deno.errors.NotFound) {
    return new FlashError(
      "BAD_IMAGE",
      `image ${path} does not exist`,
      "check the file name and the current directory",
    );
  }
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
    return new FlashError(
      "BAD_IMAGE",
      `cannot read image ${path}: permission denied`,
      "check the file's permissions",
    );
  }
  return new FlashError("BAD_IMAGE", `cannot read image ${path}: ${(e as Error).message}`, "check the file", {
    cause: e,
  });
}

/** An output file being written piece by piece (read-flash --out). */
export interface OutputFile {
  write(chunk: Uint8Array): Promise<void>;
  /** Finish: a regular file appears under its name only now. */
  commit(): Promise<void>;
  /** Give up: a regular file's temporary copy is removed. */
  abort(): Promise<void>;
}

/**
 * Open an output file for streaming: a regular file through a temporary name and a rename,
 * so it never exists half-written; a device or pipe (`/dev/null`, `/dev/stdout`) directly.
 */
export async function openOutput(path: string): Promise<OutputFile> {
  const fail = (e: unknown) => outputError(path, e);
  const st = await Deno.stat(path).catch(() => null);
  if (st?.isDirectory) throw fail(new Error("it is a directory"));
  if (st && !st.isFile) {
    const f = await Deno.open(path, { write: true }).catch((e) => Promise.reject(fail(e)));
    return {
      async write(chunk) {
        try {
          for (let off = 0; off < chunk.length;) off += await f.write(chunk.subarray(off));
        } catch (e) {
          throw fail(e);
        }
      },
      commit: () => Promise.resolve(f.close()),
      abort: () => Promise.resolve(f.close()),
    };
  }
  let w: StoreWriter;
  try {
    w = await fileWriter(path);
  } catch (e) {
    throw fail(e);
  }
  return {
    write: (chunk) => w.write(chunk).catch((e) => Promise.reject(fail(e))),
    async commit() {
      try {
        await w.commit();
      } catch (e) {
        await w.abort();
        throw fail(e);
      }
    },
    abort: () => w.abort(),
  };
}

/** Names of the process's stdout as `--out` may give them. */
const STDOUT_NAMES = new Set(["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"]);

/** Whether `--out` means the process's standard output. */
export function isStdout(path: string): boolean {
  return STDOUT_NAMES.has(path);
}

/** An output that streams into `write` (stdout): nothing to commit or undo. */
export function streamOutput(write: (chunk: Uint8Array) => Promise<void>): OutputFile {
  return { write, commit: () => Promise.resolve(), abort: () => Promise.resolve() };
}

function outputError(path: string, e: unknown): FlashError {
  if (e instanceof FlashError) return e;
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    return new FlashError(
      "USAGE",
      `cannot write ${path}: permission denied`,
      "pass --out a regular file you may write, or --out - for stdout",
      { cause: e },
    );
  }
  return new FlashError(
    "USAGE",
    `cannot write ${path}: ${
      e instanceof Deno.errors.NotFound ? "its directory does not exist" : (e as Error).message
    }`,
    "pass --out a path in an existing, writable directory with free space",
    { cause: e },
  );
}

/** Read a whole firmware image, refusing a missing, unreadable, directory or empty file. */
export async function readImage(path: string): Promise<Uint8Array> {
  const image = await openImage(path);
  try {
    return await image.read(0, image.size);
  } catch (e) {
    throw imageError(path, e);
  } finally {
    image.close();
  }
}

/**
 * Write an output file (read-flash --out): a regular file through a temporary name and a
 * rename, so it never exists half-written; a device or pipe (`/dev/null`, `/dev/stdout`)
 * directly.
 */
export async function writeOutput(path: string, data: Uint8Array): Promise<void> {
  const fail = (e: unknown) =>
    new FlashError(
      "USAGE",
      `cannot write ${path}: ${
        e instanceof Deno.errors.NotFound ? "its directory does not exist" : (e as Error).message
      }`,
      "pass --out a path in an existing, writable directory with free space",
      { cause: e },
    );
  const st = await Deno.stat(path).catch(() => null);
  if (st && !st.isFile) {
    if (st.isDirectory) throw fail(new Error("it is a directory"));
    await Deno.writeFile(path, data).catch((e) => Promise.reject(fail(e)));
    return;
  }
  const tmp = `${path}.tmp`;
  try {
    await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw fail(e);
  }
}

/** Fail before any flash is read when `path` cannot be written (missing directory, no permission). */
export async function checkWritable(path: string): Promise<void> {
  const st = await Deno.stat(path).catch(() => null);
  try {
    if (st?.isDirectory) throw new Error("it is a directory");
    if (st) {
      (await Deno.open(path, { write: true })).close();
    } else {
      (await Deno.open(path, { write: true, createNew: true })).close();
      await Deno.remove(path);
    }
  } catch (e) {
    throw outputError(path, e);
  }
}

/** The canonical path of `path` (symlinks resolved), also for a file that does not exist yet. */
async function canonical(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    try {
      return join(await Deno.realPath(dirname(path)), basename(path));
    } catch {
      return resolve(path);
    }
  }
}

/** Files a command works with that its `--out` must never overwrite. */
export interface OwnFiles {
  /** `--state` of a virtual chip. */
  state?: string;
  /** `--record` trace. */
  record?: string;
  /** `--backup-dir`: its backups, sidecars and journals. */
  backupDir?: string;
}

/**
 * Refuse an output path that is one of the files the command itself uses: the virtual chip's
 * state file (the read would end with the state saved over the dump), the wire trace, or a
 * backup, sidecar or journal in the backup directory. Checked before anything is read.
 */
export async function checkNotOwnFile(out: string, own: OwnFiles): Promise<void> {
  const target = await canonical(out);
  const refuse = (what: string, remedy: string) => new FlashError("USAGE", `--out ${out} is ${what}`, remedy);
  if (own.state) {
    const state = await canonical(own.state);
    if (target === state || target === `${state}.tmp`) {
      throw refuse(
        "the virtual chip's --state file, which is saved when the command ends",
        "pass --out another file name",
      );
    }
  }
  if (own.record && target === await canonical(own.record)) {
    throw refuse("the --record trace of this command", "pass --out and --record different files");
  }
  if (own.backupDir && dirname(target) === await canonical(own.backupDir)) {
    const name = basename(target);
    const exists = async (p: string) => (await Deno.stat(p).catch(() => null))?.isFile ?? false;
    const sidecar = name.endsWith(".bin") && await exists(`${target.slice(0, -4)}.json`);
    if (await exists(target) && (name.endsWith(".json") || sidecar)) {
      const what = name.endsWith(".journal.json")
        ? "the journal of a write"
        : name.endsWith(".json")
        ? "the sidecar of a backup"
        : "a backup";
      throw refuse(
        `${what} in --backup-dir`,
        "pass --out a new file name; backups and journals are kept as they were written",
      );
    }
  }
}
