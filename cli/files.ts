/**
 * File access for the CLI: the backup store on a directory, firmware images and output
 * files, with every failure turned into a one-line cause and remedy.
 *
 * @module
 */

import { join } from "node:path";
import { FlashError } from "../core/errors.ts";
import type { BackupStore } from "../core/flasher/backup.ts";

/**
 * Backups, sidecars and journals as files in one directory (created on first use). Files
 * are written under a temporary name and renamed, so a killed process never leaves half a
 * backup under the real name.
 */
export class DirectoryStore implements BackupStore {
  readonly dir: string;
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
}

/** Read a firmware image, refusing a missing, unreadable, directory or empty file. */
export async function readImage(path: string): Promise<Uint8Array> {
  let data: Uint8Array;
  try {
    const st = await Deno.stat(path);
    if (st.isDirectory) {
      throw new FlashError(
        "BAD_IMAGE",
        `${path} is a directory, not an image`,
        "pass the firmware .bin file itself",
      );
    }
    data = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof FlashError) throw e;
    if (e instanceof Deno.errors.NotFound) {
      throw new FlashError(
        "BAD_IMAGE",
        `image ${path} does not exist`,
        "check the file name and the current directory",
      );
    }
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      throw new FlashError(
        "BAD_IMAGE",
        `cannot read image ${path}: permission denied`,
        "check the file's permissions",
      );
    }
    throw new FlashError(
      "BAD_IMAGE",
      `cannot read image ${path}: ${(e as Error).message}`,
      "check the file",
      { cause: e },
    );
  }
  if (data.length === 0) {
    throw new FlashError(
      "BAD_IMAGE",
      `image ${path} is empty (0 bytes)`,
      "pass the firmware file you meant; a download may have failed",
    );
  }
  return data;
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
    throw new FlashError(
      "USAGE",
      `cannot write ${path}: ${
        e instanceof Deno.errors.NotFound ? "its directory does not exist" : (e as Error).message
      }`,
      "pass --out a path in an existing, writable directory",
      { cause: e },
    );
  }
}
