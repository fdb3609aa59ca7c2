import { assertSameBytes } from "./support/bytes.ts";
import assert from "node:assert/strict";
import fc from "fast-check";
import { main } from "../cli/flash.ts";
import { servePty, serveTcp } from "../emulator/serve.ts";
import { createVirtualChip } from "../emulator/virtual.ts";

/**
 * Cancellation (docs/testing.md §2 item 11): Ctrl-C at any moment of a write over a real transport (a
 * TCP bridge or a pseudo-terminal served by the emulator) ends with the port closed (the test's
 * resource sanitizer fails otherwise), a non-zero exit unless the job had already finished, and
 * the flash either unchanged, or holding the image where it changed, or inside the range the
 * error says may differ.
 */

Deno.test("cancel at any point of write-flash: port closed, flash unchanged or reported", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bekenlab-cancel-" });
  try {
    const image = new Uint8Array(0x9000).map((_, i) => (i * 37) & 0xff);
    await Deno.writeFile(`${dir}/app.bin`, image);
    let cancelled = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("tcp", "pty"), fc.nat({ max: 700 }), async (transport, k) => {
        const v = await createVirtualChip({ chip: "bk7231n" });
        const pre = v.nor.read(0, v.nor.size);
        const server = transport === "tcp"
          ? serveTcp(v.chip, {}, { pace: "none" })
          : servePty(v.chip, { pace: "none" });
        const ac = new AbortController();
        let n = 0;
        v.chip.onCommand = () => {
          if (++n === k) ac.abort();
        };
        let stdout = "";
        const code = await main(
          [
            "--json",
            "--port",
            server.address,
            "--baud",
            "115200",
            "--backup-dir",
            `${dir}/b${k}`,
            "write-flash",
            `${dir}/app.bin`,
            "--addr",
            "0x20000",
          ],
          {
            io: { stdout: (t) => (stdout += t), stderr: () => {}, stderrIsTTY: false },
            signal: ac.signal,
            now: () => new Date("2026-11-22T03:00:00Z"),
          },
        );
        await server.close();
        const out = JSON.parse(stdout.trim().split("\n").pop()!);
        const now = v.nor.read(0, v.nor.size);
        if (code === 0) {
          assertSameBytes(now.subarray(0x20000, 0x29000), image, "the image");
          return;
        }
        if (ac.signal.aborted) {
          cancelled++;
          // Ctrl-C is Ctrl-C in every phase: exit 130, and an interrupted write names --resume
          assert.equal(code, 130, `${out.code}: ${out.error}`);
          assert.equal(out.code, "CANCELLED");
          if (out.damage) assert.match(out.remedy, /--resume/);
        }
        assert.equal(out.ok, false);
        const damage = out.damage as { start: number; end: number } | undefined;
        for (let a = 0; a < now.length; a++) {
          if (now[a] === pre[a]) continue;
          const isImage = a >= 0x20000 && a < 0x29000 && now[a] === image[a - 0x20000];
          assert.ok(
            isImage || (damage && a >= damage.start && a < damage.end),
            `${out.code} left 0x${a.toString(16)} changed outside its damage report`,
          );
        }
      }),
      { seed: 1122, numRuns: 16 },
    );
    assert.ok(cancelled > 4, `only ${cancelled} runs were cancelled mid-job`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
