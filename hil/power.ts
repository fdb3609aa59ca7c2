/**
 * Power control of the chip under test (labgrid's PowerProtocol): RTS wired to CEN on a
 * USB-UART adapter, the CH341A's D2 line, an spidev port's GPIO line on CEN, or a user's shell
 * command driving a relay. Which one a port offers is its row in the port registry
 * (`core/io/registry.ts`).
 *
 * @module
 */

import type { Clock } from "../core/clock.ts";
import { FlashError } from "../core/errors.ts";
import type { ByteLink } from "../core/io/link.ts";
import type { SpiMaster } from "../core/io/spi.ts";
import { pulseCen } from "../core/spi/entry.ts";

/** How long the chip is held off during a power cycle (ms). */
export const POWER_OFF_MS = 250;

/** A way to cut and restore the chip's power (or hold it in reset, which is the same to it). */
export interface PowerControl {
  /** "rts", "ch341a-d2", "gpio-cen", "command" or "virtual". */
  readonly kind: string;
  /** One line for reports ("RTS → CEN on /dev/ttyUSB0"). */
  readonly description: string;
  /** Off for {@link POWER_OFF_MS}, then on. */
  cycle(): Promise<void>;
}

/** RTS asserted holds CEN low (the auto-reset wiring the emulator also models). */
export function rtsPower(link: ByteLink): PowerControl {
  return {
    kind: "rts",
    description: `RTS → CEN on ${link.name}`,
    async cycle() {
      await link.setSignals({ rts: true });
      await link.clock.sleep(POWER_OFF_MS);
      await link.setSignals({ rts: false });
    },
  };
}

/** The CH341A's D2 pin on CEN; `open` gives a master for the pulse (and closes it after). */
export function ch341aPower(name: string, open: () => Promise<SpiMaster>): PowerControl {
  return cenPulsePower("ch341a-d2", `CH341A D2 → CEN on ${name}`, open);
}

/** An spidev port's GPIO line on CEN (`--cen`); `open` gives a master holding that line. */
export function gpioCenPower(name: string, cen: string, open: () => Promise<SpiMaster>): PowerControl {
  return cenPulsePower("gpio-cen", `GPIO ${cen} → CEN on ${name}`, open);
}

/** CEN pulsed low through an SPI master's reset line. */
function cenPulsePower(kind: string, description: string, open: () => Promise<SpiMaster>): PowerControl {
  return {
    kind,
    description,
    async cycle() {
      const spi = await open();
      try {
        await pulseCen(spi, POWER_OFF_MS);
      } finally {
        await spi.close();
      }
    },
  };
}

/** Runs `sh -c <command>` (a relay, a smart plug); a non-zero exit fails the cycle. */
export function commandPower(command: string, clock: Clock): PowerControl {
  return {
    kind: "command",
    description: `command: ${command}`,
    async cycle() {
      let out: Deno.CommandOutput;
      try {
        out = await new Deno.Command("sh", { args: ["-c", command], stdout: "piped", stderr: "piped" })
          .output();
      } catch (e) {
        throw new FlashError(
          "USAGE",
          `--power-cycle-cmd could not be started: ${(e as Error).message}`,
          "check the command, and run with --allow-run",
        );
      }
      if (!out.success) {
        const err = new TextDecoder().decode(out.stderr).trim().split("\n")[0] ?? "";
        throw new FlashError(
          "USAGE",
          `--power-cycle-cmd exited with status ${out.code}${err ? `: ${err}` : ""}`,
          "run the command by hand until it cycles the board's power, then pass it again",
        );
      }
      await clock.sleep(50);
    },
  };
}
