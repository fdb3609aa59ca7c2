/**
 * Virtual targets: a {@link BekenChip} built from a chip profile, optionally persisted in a
 * state file, reachable through a {@link VirtualWire}. This is what `--port virtual:<chip>`
 * opens, what `deno task emulate` serves, and what the tests and the HIL matrix run on.
 *
 * @example
 * ```ts
 * const v = await createVirtualChip({ chip: "bk7231n" });
 * const link = v.link(); // a ByteLink on a virtual clock
 * ```
 *
 * @module
 */

import { FlashError } from "../core/errors.ts";
import { buildVirtualChip, type VirtualChip, type VirtualChipOptions } from "./build_chip.ts";

export {
  buildVirtualChip,
  efuseFromKey,
  type StateIo,
  type VirtualChip,
  type VirtualChipOptions,
} from "./build_chip.ts";

/** Build a virtual chip, loading `opts.state` when that file exists; `save()` writes it. */
export async function createVirtualChip(opts: VirtualChipOptions): Promise<VirtualChip> {
  if (!opts.state) return buildVirtualChip(opts);
  const path = opts.state;
  return buildVirtualChip(opts, {
    stored: await readStateFile(path),
    name: path,
    async write(bytes) {
      const tmp = `${path}.tmp`;
      try {
        await Deno.writeFile(tmp, bytes);
        await Deno.rename(tmp, path);
      } catch (e) {
        await Deno.remove(tmp).catch(() => {});
        throw e;
      }
    },
  });
}

/**
 * The state file's bytes, or null for a new chip. A directory, a device, a pipe or a read-only
 * file is refused: the state is replaced on every save, which would silently undo a read-only
 * mark (a rename needs only the directory to be writable) or hang on a pipe.
 */
async function readStateFile(path: string): Promise<Uint8Array | null> {
  const bad = (why: string) =>
    new FlashError(
      "USAGE",
      `--state ${path} ${why}`,
      "pass --state the path of a writable regular file (it is created when missing)",
    );
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw bad(`cannot be read: ${(e as Error).message}`);
  }
  if (st.isDirectory) throw bad("is a directory, not a state file");
  if (!st.isFile) throw bad("is not a regular file (a device or a pipe)");
  if (st.mode !== null && (st.mode & 0o222) === 0) {
    throw new FlashError(
      "USAGE",
      `--state ${path} is read-only, but the chip's state is saved back into it`,
      "make it writable (chmod u+w), or copy it and pass the copy",
    );
  }
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw bad(`cannot be read: ${(e as Error).message}`);
  }
}
