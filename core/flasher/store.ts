/**
 * Where backups and journals are kept: the {@link BackupStore} interface the core writes
 * through, {@link MemoryStore} for tests and hosts without a file system, and the two ways the
 * flasher reaches any store (a piece-by-piece writer, a read-only byte source). The store on a
 * directory is `DirectoryStore` in `files.ts`.
 *
 * @module
 */

import type { ByteSource } from "./source.ts";
import { inUseError } from "../io/lock.ts";

/** An entry of a {@link BackupStore}. */
export interface StoreEntry {
  /** Name of the entry in the store. */
  name: string;
  /** Where the store keeps it (a path for a directory store). */
  location: string;
}

/** An entry being written piece by piece. */
export interface StoreWriter {
  /** Append bytes (copied or written at once: the caller reuses its buffer). */
  write(chunk: Uint8Array): Promise<void>;
  /** Make the entry visible under its name; resolves to its location. */
  commit(): Promise<string>;
  /** Drop what was written. */
  abort(): Promise<void>;
}

/**
 * Where backups and journals are kept. The CLI implements it on files; the core only names
 * things and never touches a file system itself. The optional members let backups stream
 * (memory stays flat with the flash size) and let an earlier backup be found and reused.
 */
export interface BackupStore {
  /** Store `data` under `name` (replacing an earlier entry); resolves to its location (a path). */
  put(name: string, data: Uint8Array): Promise<string>;
  /** The bytes stored at `location`. */
  get(location: string): Promise<Uint8Array>;
  /** Write an entry piece by piece; without it the pieces are joined and `put`. */
  create?(name: string): Promise<StoreWriter>;
  /** `length` bytes at `offset` of the entry at `location`; without it the entry is read whole. */
  read?(location: string, offset: number, length: number): Promise<Uint8Array>;
  /** Every entry; without it no earlier backup is ever reused. */
  list?(): Promise<StoreEntry[]>;
  /** Delete the entry at `location`; without it superseded after-write images are kept. */
  remove?(location: string): Promise<void>;
  /**
   * Take the store for one job (its backup, journal and after-image) and hold it until
   * released; rejects with a FlashError naming the store when another job holds it. Every
   * write or erase job takes it first, so two jobs never pick the same backup name or write
   * one journal. Without it a store is taken to have one user.
   */
  lock?(): Promise<StoreLock>;
}

/** A {@link BackupStore} held by one job. */
export interface StoreLock {
  /** Give the store back (idempotent). */
  release(): void;
}

/** A {@link BackupStore} in memory, for tests and hosts without a file system. */
export class MemoryStore implements BackupStore {
  /** Entries by name. */
  readonly entries: Map<string, Uint8Array> = new Map();
  put(name: string, data: Uint8Array): Promise<string> {
    this.entries.set(name, data.slice());
    return Promise.resolve(name);
  }
  get(location: string): Promise<Uint8Array> {
    const data = this.entries.get(location);
    return data ? Promise.resolve(data.slice()) : Promise.reject(new Error(`no entry ${location}`));
  }
  create(name: string): Promise<StoreWriter> {
    return Promise.resolve(joiningWriter((data) => this.put(name, data)));
  }
  read(location: string, offset: number, length: number): Promise<Uint8Array> {
    const data = this.entries.get(location);
    if (!data) return Promise.reject(new Error(`no entry ${location}`));
    return Promise.resolve(data.slice(offset, offset + length));
  }
  list(): Promise<StoreEntry[]> {
    return Promise.resolve([...this.entries.keys()].map((name) => ({ name, location: name })));
  }
  remove(location: string): Promise<void> {
    this.entries.delete(location);
    return Promise.resolve();
  }
  #held = false;
  /** Held by one job at a time within this process. */
  lock(): Promise<StoreLock> {
    if (this.#held) return Promise.reject(inUseError("the backup store"));
    this.#held = true;
    let open = true;
    return Promise.resolve({
      release: () => {
        if (open) this.#held = open = false;
      },
    });
  }
}

/** A writer that collects the pieces and hands them to `put` on commit. */
function joiningWriter(put: (data: Uint8Array) => Promise<string>): StoreWriter {
  let parts: Uint8Array[] = [];
  return {
    write(chunk) {
      parts.push(chunk.slice());
      return Promise.resolve();
    },
    commit() {
      const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        data.set(p, o);
        o += p.length;
      }
      parts = [];
      return put(data);
    },
    abort() {
      parts = [];
      return Promise.resolve();
    },
  };
}

/** A writer for `name` on any store. */
export async function openWriter(store: BackupStore, name: string): Promise<StoreWriter> {
  return store.create ? await store.create(name) : joiningWriter((data) => store.put(name, data));
}

/** The entry at `location` (of `size` bytes) as a {@link ByteSource}, read piece by piece where the store can. */
export function storedSource(store: BackupStore, location: string, size: number): ByteSource {
  let whole: Promise<Uint8Array> | null = null;
  return {
    size,
    read(offset, length) {
      if (store.read) return store.read(location, offset, Math.min(length, size - offset));
      whole ??= store.get(location);
      return whole.then((d) => d.subarray(offset, Math.min(size, offset + length)));
    },
  };
}
