/**
 * Write-through persistence of a virtual chip: after every loader command that changed the
 * flash or the status registers, the state file is brought up to date before the reply goes
 * out. A host process killed at any moment then leaves the "chip" exactly as far as it got,
 * as a real chip's flash would be, which is what resuming an interrupted job is tested
 * against.
 *
 * @module
 */

import { decodeFields, decodeRequest } from "../core/uart/codec.ts";
import { COMMANDS, type CommandSpec } from "../core/uart/table.ts";
import type { VirtualChip } from "./virtual.ts";

const CHANGING = new Set<string>([
  COMMANDS.FlashErase.name,
  COMMANDS.FlashErase4K.name,
  COMMANDS.FlashEraseAll.name,
  COMMANDS.FlashWrite.name,
  COMMANDS.FlashWrite4K.name,
]);

const ERASE_SIZE: Record<number, number> = { 0x20: 0x1000, 0x52: 0x8000, 0xd8: 0x10000 };

/**
 * Keep `path` in step with `v` from now on (the file is written once at once). Returns a
 * function that stops it. Saving is synchronous, so nothing the chip did is lost when the
 * process dies between two commands.
 *
 * @example
 * ```ts
 * import { createVirtualChip } from "./virtual.ts";
 * const v = await createVirtualChip({ chip: "bk7231n", state: "chip.state" });
 * const stop = writeThrough(v, "chip.state");
 * ```
 */
export function writeThrough(v: VirtualChip, path: string): () => void {
  const nor = v.nor;
  let savedSr = -1;
  let head = 0;
  const saveAll = () => {
    const bytes = v.stateBytes();
    const tmp = `${path}.tmp`;
    try {
      Deno.writeFileSync(tmp, bytes);
      Deno.renameSync(tmp, path);
    } catch (e) {
      try {
        Deno.removeSync(tmp);
      } catch {
        // never created: the directory refused it
      }
      throw e;
    }
    head = bytes.length - nor.size;
    savedSr = nor.srWord;
  };
  const saveRange = (start: number, len: number) => {
    const size = nor.size;
    const a = ((start % size) + size) % size;
    const n = Math.min(len, size - a);
    const f = Deno.openSync(path, { write: true });
    try {
      f.seekSync(head + a, Deno.SeekMode.Start);
      const data = nor.read(a, n);
      for (let off = 0; off < data.length;) off += f.writeSync(data.subarray(off));
    } finally {
      f.close();
    }
    if (n < len) saveRange(0, len - n);
  };
  saveAll();
  const previous = v.chip.onCommand;
  v.chip.onCommand = (name, request, reply, at) => {
    previous?.(name, request, reply, at);
    if (nor.srWord !== savedSr) {
      saveAll();
      return;
    }
    if (!CHANGING.has(name) || !request) return;
    const spec = Object.values<CommandSpec>(COMMANDS).find((c) => c.name === name);
    const values = spec && decodeFields(spec.request, request);
    if (!values) return;
    const addr = typeof values.addr === "number" ? values.addr : 0;
    switch (name) {
      case "FlashEraseAll":
        return saveAll();
      case "FlashErase": {
        const erase = decodeRequest(COMMANDS.FlashErase, request);
        const len = erase && ERASE_SIZE[erase.sizeCmd];
        if (len) saveRange(addr - (addr % len), len);
        return;
      }
      case "FlashWrite":
        return saveRange(addr - (addr % 256), 512);
      default:
        return saveRange(addr - (addr % 0x1000), 0x1000);
    }
  };
  return () => {
    v.chip.onCommand = previous;
  };
}
