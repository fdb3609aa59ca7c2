/**
 * `deno task flash restore-rf`: put the RF calibration / MAC sector back, from a backup of the
 * same chip (`--from`) or as a fresh template with a random MAC tail (`--template`). The
 * sector is parsed before anything is written (a TLV that does not parse is refused), the
 * write goes through the flasher (backup first, verified).
 *
 * @module
 */

import { FlashError } from "../core/errors.ts";
import { hex } from "../core/flasher/range.ts";
import { writeFlash } from "../core/flasher/write.ts";
import { parseRfTlv, randomTemplateMac, templateRfTlvN } from "../core/image/rf_tlv.ts";
import { type CommandEnv, contextFor, jobOptions } from "./command_env.ts";
import { readImage } from "../core/flasher/files.ts";
import type { Session } from "./session.ts";

/** Options of `restore-rf`. */
export interface RestoreRfOptions {
  from?: string;
  template: boolean;
  /** Random bytes (tests pin them). */
  random?: (n: number) => Uint8Array;
}

const SECTOR = 0x1000;

/** The RF sector of a backup: at the chip's RF offset, else the last sector with a TLV header. */
export function rfSectorOf(
  backup: Uint8Array,
  rfOffset: number,
): { offset: number; sector: Uint8Array } | null {
  const at = (o: number) => backup.subarray(o, o + SECTOR);
  if (rfOffset + SECTOR <= backup.length && parseRfTlv(at(rfOffset)).valid) {
    return { offset: rfOffset, sector: at(rfOffset).slice() };
  }
  for (let o = Math.floor(backup.length / SECTOR) * SECTOR - SECTOR; o >= 0; o -= SECTOR) {
    if (parseRfTlv(at(o)).valid) return { offset: o, sector: at(o).slice() };
  }
  return null;
}

async function sidecarOf(path: string): Promise<{ chip?: string; flashId?: string | null } | null> {
  const side = path.replace(/\.bin$/i, "") + ".json";
  try {
    return JSON.parse(await Deno.readTextFile(side));
  } catch {
    return null;
  }
}

/** `restore-rf`. */
export async function restoreRfCommand(s: Session, env: CommandEnv, o: RestoreRfOptions): Promise<void> {
  const profile = s.uart?.identity.profile;
  if (!profile) {
    throw new FlashError(
      "UNSUPPORTED",
      "restore-rf needs to know the chip's RF sector, which only the boot-UART path identifies",
      "run it over the chip's UART (--port /dev/ttyUSB0 or virtual:<chip>)",
    );
  }
  if (!o.from === !o.template) {
    throw new FlashError(
      "USAGE",
      "restore-rf needs exactly one of --from <backup> and --template",
      "pass one of them",
    );
  }
  const rf = profile.layout.rf.start;
  let sector: Uint8Array;
  let origin: string;
  if (o.from) {
    const backup = await readImage(o.from);
    const side = await sidecarOf(o.from);
    if (side) {
      if (side.chip && side.chip !== s.identity.chip) {
        throw new FlashError(
          "WRONG_CHIP",
          `${o.from} is a backup of a ${side.chip}, this chip is a ${s.identity.chip}`,
          "restore RF from a backup of this very chip, or use --template for a fresh sector",
        );
      }
      if (side.flashId && s.identity.flashId && side.flashId !== s.identity.flashId) {
        throw new FlashError(
          "WRONG_CHIP",
          `${o.from} was read from flash ID ${side.flashId}, this chip's flash ID is ${s.identity.flashId}`,
          "restore RF from a backup of this very chip, or use --template for a fresh sector",
        );
      }
    } else if (!env.yes) {
      throw new FlashError(
        "USAGE",
        `${o.from} has no sidecar (.json) saying which chip it comes from`,
        "pass --yes if it is a backup of this very chip (its calibration belongs to that chip alone)",
      );
    }
    const found = rfSectorOf(backup, rf);
    if (!found) {
      throw new FlashError(
        "BAD_IMAGE",
        `${o.from} holds no valid RF/MAC TLV sector (none at ${hex(rf)} and none elsewhere)`,
        "use a whole-flash backup taken before the chip was flashed, or --template for a fresh sector",
      );
    }
    sector = found.sector;
    origin = `${o.from} at ${hex(found.offset)}`;
  } else {
    if (profile.layout.rf.start !== 0x1d0000) {
      throw new FlashError(
        "UNSUPPORTED",
        `no RF template for ${profile.name} here (only for the BK7231N/M family)`,
        "restore RF with --from <backup of this chip>",
      );
    }
    const random = o.random ?? ((n: number) => crypto.getRandomValues(new Uint8Array(n)));
    sector = templateRfTlvN(randomTemplateMac(random));
    origin = "template";
  }
  const parsed = parseRfTlv(sector);
  if (!parsed.valid) {
    throw new FlashError(
      "BAD_IMAGE",
      `the RF sector to write does not parse: ${parsed.problem}`,
      "nothing was written",
    );
  }
  const ctx = await contextFor(s, env);
  const r = await writeFlash(ctx, sector, {
    addr: rf,
    overwriteBootloader: false,
    ...jobOptions(s, env),
  });
  env.progress.stop();
  env.out.result(
    {
      addr: rf,
      size: SECTOR,
      source: origin,
      mac: parsed.mac,
      verified: true,
      backup: r.backup,
      changed: r.changed,
    },
    [
      r.changed === 0
        ? `The RF/MAC sector at ${hex(rf)} already matches ${origin}: MAC ${parsed.mac}; nothing written`
        : `Restored the RF/MAC sector at ${hex(rf)} from ${origin}: MAC ${parsed.mac}; verified`,
      ...(r.backup ? [`Backup: ${r.backup}`] : []),
    ],
  );
}
