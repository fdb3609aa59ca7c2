/**
 * "Try it without a chip": the emulator running inside the page, behind the same interfaces a
 * real port offers the flow (a {@link ByteLink} for the boot UART, a WebUSB-shaped CH341A for
 * SPI mode), with an optional seeded fault plan. Nothing here touches the network or a file.
 *
 * @module
 */

import { CHIPS } from "../core/chips/profiles.ts";
import type { ByteLink } from "../core/io/link.ts";
import type { UsbDeviceLike } from "../core/io/usb.ts";
import { buildVirtualChip, type VirtualChip } from "../emulator/build_chip.ts";
import { createVirtualCh341a } from "../emulator/ch341a.ts";
import { FaultyLink } from "../emulator/faults/link.ts";
import { FaultDice, type FaultPlan, FaultRecorder } from "../emulator/faults/plan.ts";
import { checkFaultKinds, faultPlanFromJson } from "../emulator/faults/plan_json.ts";
import { FaultyUsbDevice, refuseSpiEntry } from "../emulator/faults/usb.ts";

/** Chip profiles the page offers. */
export const PAGE_CHIPS: readonly { id: string; name: string }[] = CHIPS.map((c) => ({
  id: c.id,
  name: c.name,
}));

/** Parse a fault plan typed into the page (the JSON form of the CLI's `--faults`); empty is none. */
export function parsePagePlan(text: string, path: "uart" | "spi"): FaultPlan | null {
  if (text.trim() === "") return null;
  const plan = faultPlanFromJson(text, "fault plan");
  return checkFaultKinds(plan, { kind: path === "uart" ? "virtual" : "ch341a-virtual" }, "fault plan");
}

/** A chip in the page and the port to reach it. */
export interface PageVirtual {
  chip: VirtualChip;
  /** The UART link (UART path) or null. */
  link: ByteLink | null;
  /** The virtual CH341A (SPI path) or null. */
  device: UsbDeviceLike | null;
  /** What the fault plan injected so far. */
  recorder: FaultRecorder;
  /** The whole flash as the chip holds it now. */
  flash(): Uint8Array;
}

/** Build an in-page chip of profile `chipId` on the UART or CH341A path. */
export function createPageVirtual(
  chipId: string,
  path: "uart" | "spi",
  plan: FaultPlan | null,
  seed = 1,
): PageVirtual {
  const chip = buildVirtualChip({ chip: chipId, seed });
  const recorder = new FaultRecorder();
  const flash = () => chip.nor.snapshot().data;
  if (path === "uart") {
    const wire = chip.link();
    return {
      chip,
      link: plan ? new FaultyLink(wire, plan, { recorder }) : wire,
      device: null,
      recorder,
      flash,
    };
  }
  const rig = createVirtualCh341a({
    nor: chip.nor,
    clock: chip.clock,
    entry: { successProbability: 0.4 },
    seed,
  });
  let device: UsbDeviceLike = rig.device;
  if (plan) {
    if (rig.chip) refuseSpiEntry(rig.chip, new FaultDice(plan, recorder, 301), rig.clock);
    device = new FaultyUsbDevice(device, plan, { recorder, clock: rig.clock });
  }
  return { chip, link: null, device, recorder, flash };
}
