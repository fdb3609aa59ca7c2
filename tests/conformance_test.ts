import assert from "node:assert/strict";
import { CHIPS } from "../core/chips/profiles.ts";
import {
  createContext,
  eraseRegion,
  MemoryStore,
  readFlash,
  verifyFlash,
  writeFlash,
} from "../core/flasher/mod.ts";
import { RequestParser } from "../core/uart/parser.ts";
import { commandByKey, type CommandName, COMMANDS } from "../core/uart/table.ts";
import { openUartTarget } from "../core/uart/target.ts";
import { createFaultyChip } from "../emulator/faults.ts";

/**
 * Chip-mode conformance (docs/testing.md §2 item 9): through a whole session (link, baud switch,
 * detection, backup, write, verify, erase, read, reboot), the host sends only commands the
 * chip's loader personality implements, with or without --chip. A new chip mode must pass this
 * before release.
 */

for (const profile of CHIPS.filter((c) => c.uart)) {
  for (const given of [true, false]) {
    Deno.test(`conformance: ${profile.id}${given ? "" : " (detected)"} gets only ${profile.personality} commands`, async () => {
      const v = createFaultyChip({
        chip: profile.id,
        flashId: [0x85, 0x60, 0x13],
        plan: { seed: 1, rates: {} },
      });
      const parser = new RequestParser();
      const sent = new Map<string, number>();
      const link = v.link({
        onWrite: (data) => {
          parser.push(data);
          for (let f = parser.next(); f; f = parser.next()) {
            const name = commandByKey(f.kind, f.code)?.name ?? `unknown ${f.kind} 0x${f.code.toString(16)}`;
            sent.set(name, (sent.get(name) ?? 0) + 1);
          }
        },
      });
      const { target, identity } = await openUartTarget(link, {
        chip: given ? profile : undefined,
        baud: 921600,
        linkTimeoutMs: 2000,
      });
      const ctx = await createContext(target, link.clock);
      const store = new MemoryStore();
      const id = { chip: identity.profile.name, flashId: null, key: null };
      const image = new Uint8Array(0x12000).map((_, i) => (i * 29) >> 3);
      await writeFlash(ctx, image, { addr: 0x20000, store, identity: id, createdAt: new Date(0) });
      await verifyFlash(ctx, image, { addr: 0x20000 });
      await eraseRegion(ctx, {
        addr: 0x30000,
        size: 0x2000,
        noBackup: true,
        identity: id,
        createdAt: new Date(0),
      });
      await readFlash(ctx, { addr: 0, size: 0x20000 });
      await target.reboot();
      await target.close();
      const foreign = [...sent.keys()].filter((name) =>
        !(name in COMMANDS) || !COMMANDS[name as CommandName].support.includes(profile.personality)
      );
      assert.deepEqual(foreign, [], `sent outside the ${profile.personality} table: ${foreign.join(", ")}`);
      assert.ok(
        (sent.get("FlashWrite4K") ?? 0) > 0 && (sent.get("FlashErase") ?? 0) > 0,
        JSON.stringify([...sent]),
      );
    });
  }
}
