/**
 * Every HIL scenario, in the order a run executes them: the non-destructive ones first, so
 * a run against real hardware learns the most before it changes anything.
 *
 * @module
 */

import type { Scenario } from "../scenario.ts";
import { baudLadder } from "./baud_ladder.ts";
import { bootloaderGuard } from "./bootloader_guard.ts";
import { bootsAfterWrite, imageKeyBoot } from "./boot_key.ts";
import { bk7231mFlow } from "./m_flow.ts";
import { detect } from "./detect.ts";
import { eraseRegionScenario } from "./erase_region.ts";
import { fullBackup } from "./full_backup.ts";
import { incrementalRewrite } from "./incremental.ts";
import { keyGuard } from "./key_guard.ts";
import { powerCycle } from "./power_cycle.ts";
import { readKeyScenario } from "./read_key.ts";
import { spiRecovery } from "./spi_recovery.ts";
import { unprotectScenario } from "./unprotect.ts";
import { writeVerify } from "./write_verify.ts";

/** The suite. */
export const SCENARIOS: readonly Scenario[] = [
  detect,
  readKeyScenario,
  keyGuard,
  bootloaderGuard,
  baudLadder,
  fullBackup,
  powerCycle,
  writeVerify,
  incrementalRewrite,
  eraseRegionScenario,
  unprotectScenario,
  spiRecovery,
  imageKeyBoot,
  bootsAfterWrite,
  bk7231mFlow,
];

/** Find a scenario by id. */
export function scenarioById(id: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.id === id);
}
