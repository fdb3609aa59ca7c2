import assert from "node:assert/strict";
import fc from "fast-check";
import { CHIPS } from "../core/chips/profiles.ts";
import type { Clock } from "../core/clock.ts";
import type { ByteLink, ModemSignals } from "../core/io/link.ts";
import { UartClient } from "../core/uart/client.ts";
import { RequestParser } from "../core/uart/parser.ts";
import { switchBaud } from "../core/uart/baud_switch.ts";
import { connect } from "../core/uart/connect.ts";
import type { SessionEvent } from "../core/uart/events.ts";
import { commandByKey, COMMANDS } from "../core/uart/table.ts";
import { createFaultyChip } from "../emulator/faults.ts";
import { baudsMatch } from "../emulator/wire.ts";

/**
 * The baud handshake under any interleaving (docs/testing.md §2 item 3): every host operation on the
 * link waits for fast-check's scheduler, which meanwhile lets the virtual clock run on by
 * arbitrary amounts, so the host may reprogram its UART before, during or after the chip's
 * switch and see its replies late. Whatever the order, the session ends at the requested rate
 * or at 115200 with a fallback notice, host and chip agree, and nothing but link checks and
 * the baud command is ever written while they disagree.
 */

/** A link whose every operation first waits for the scheduler. */
class ScheduledLink implements ByteLink {
  readonly inner: ByteLink;
  readonly #s: fc.Scheduler;
  constructor(inner: ByteLink, s: fc.Scheduler) {
    this.inner = inner;
    this.#s = s;
  }
  get name(): string {
    return this.inner.name;
  }
  get clock(): Clock {
    return this.inner.clock;
  }
  get baud(): number {
    return this.inner.baud;
  }
  get hasModemLines(): boolean {
    return this.inner.hasModemLines;
  }
  async #turn(label: string): Promise<void> {
    await this.#s.schedule(Promise.resolve(label), label);
  }
  async write(data: Uint8Array): Promise<void> {
    await this.#turn("write");
    await this.inner.write(data);
  }
  async read(max: number, timeoutMs: number): Promise<Uint8Array> {
    await this.#turn("read");
    return await this.inner.read(max, timeoutMs);
  }
  async drain(): Promise<void> {
    await this.#turn("drain");
    await this.inner.drain();
  }
  async flushInput(): Promise<void> {
    await this.inner.flushInput();
  }
  async setBaud(baud: number): Promise<void> {
    await this.#turn(`setBaud ${baud}`);
    await this.inner.setBaud(baud);
  }
  async setSignals(signals: ModemSignals): Promise<void> {
    await this.#turn("signals");
    await this.inner.setSignals(signals);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const RATES = [230400, 460800, 921600, 1_500_000, 2_000_000];

Deno.test("baud switch under any interleaving ends at the requested rate or at 115200 with a notice", async () => {
  let fallbacks = 0;
  let switched = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.scheduler(),
      fc.constantFrom(...CHIPS.filter((c) => c.uart).map((c) => c.id)),
      fc.constantFrom(...RATES),
      fc.array(fc.double({ min: 0, max: 30, noNaN: true }), { minLength: 1, maxLength: 16 }),
      fc.record({ glitch: fc.boolean(), ignored: fc.boolean() }),
      fc.nat(),
      async (s, chip, baud, ticks, faults, seed) => {
        const v = createFaultyChip({
          chip,
          plan: {
            seed,
            rates: { "baud-glitch": faults.glitch ? 0.5 : 0, "baud-ignored": faults.ignored ? 0.3 : 0 },
          },
        });
        const mismatched: string[] = [];
        const parser = new RequestParser();
        const faulty = v.link({
          onWrite: (data, t) => {
            parser.push(data);
            const wrong = !baudsMatch(faulty.inner.baud, v.chip.baudAt(t));
            for (let f = parser.next(); f; f = parser.next()) {
              const name = commandByKey(f.kind, f.code)?.name ?? "?";
              if (wrong && name !== "LinkCheck" && name !== "SetBaudRate") mismatched.push(name);
            }
          },
        });
        faulty.dice.active = false;
        const client = await connect(faulty, { linkTimeoutMs: 2000 });
        faulty.dice.active = true;
        // from here on every link operation waits for the scheduler, and time runs on between them
        const scheduled = new ScheduledLink(faulty, s);
        let i = 0;
        let done = false;
        const tick = () => {
          s.schedule(Promise.resolve("tick"), "tick").then(() => {
            v.clock.advanceTo(v.clock.now() + ticks[i++ % ticks.length]);
            if (!done) tick();
          });
        };
        tick();
        const sclient = new UartClient(scheduled);
        const events: SessionEvent[] = [];
        const result = switchBaud(sclient, baud, {
          onEvent: (e) => events.push(e),
          relinkTimeoutMs: 3000,
          resetStrategies: [{ kind: "modem-pulse", startMs: 0, everyMs: 500 }],
        }).then((b) => ({ b }), (e) => ({ e }));
        const outcome = await s.waitFor(result);
        done = true;
        await s.waitAll();
        faulty.dice.active = false;
        assert.ok("b" in outcome, `switchBaud failed: ${"e" in outcome ? outcome.e : ""}`);
        const got = outcome.b;
        assert.ok(got === baud || got === 115200, `ended at ${got}`);
        if (got !== baud) {
          fallbacks++;
          assert.ok(events.some((e) => e.type === "baud-fallback"), "fell back without saying so");
        } else switched++;
        assert.ok(
          baudsMatch(faulty.inner.baud, v.chip.baudAt(v.clock.now())),
          `host at ${faulty.inner.baud}, chip at ${v.chip.baudAt(v.clock.now())}`,
        );
        assert.deepEqual(mismatched, [], "commands written while host and chip disagreed on the rate");
        const ok = await client.command(COMMANDS.LinkCheck, {});
        assert.equal(ok.ok, 0);
        await client.close();
      },
    ),
    { seed: 915, numRuns: 60 },
  );
  assert.ok(
    switched > 0 && fallbacks > 0,
    `switched ${switched}, fell back ${fallbacks}: both paths must be exercised`,
  );
});
