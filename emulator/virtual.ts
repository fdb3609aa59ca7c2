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
    stored: await readIfExists(path),
    name: path,
    async write(bytes) {
      const tmp = `${path}.tmp`;
      await Deno.writeFile(tmp, bytes);
      await Deno.rename(tmp, path);
    },
  });
}

async function readIfExists(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
