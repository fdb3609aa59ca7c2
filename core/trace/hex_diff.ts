/**
 * Hex dumps that point at one byte: the rows around an offset, and two byte strings that
 * differ there, row above row.
 *
 * @module
 */

import { hexByte } from "../hex.ts";

/** Rows of 16 bytes of `bytes` around `at` (the row before and the row holding it), `at` in brackets. */
export function hexRows(label: string, bytes: Uint8Array, at: number, width = label.length): string[] {
  const first = Math.max(0, Math.floor(at / 16) * 16 - 16);
  const out: string[] = [];
  for (let r = first; r <= at; r += 16) {
    const cells: string[] = [];
    for (let i = r; i < Math.min(r + 16, bytes.length); i++) {
      cells.push(i === at ? `[${hexByte(bytes[i])}]` : hexByte(bytes[i]));
    }
    if (at >= bytes.length && r + 16 > at) cells.push("[--]");
    out.push(`  ${label.padEnd(width)}  +${r.toString(16).padStart(4, "0")}  ${cells.join(" ")}`);
  }
  return out;
}

/**
 * The rows of {@link hexRows} for two byte strings that differ at `at`, interleaved so each
 * recorded row sits above the matching row of the other side.
 *
 * @example
 * ```ts
 * hexDiff(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 9, 3), 1, ["recorded", "core"]);
 * // ["  recorded  +0000  01 [02] 03", "  core      +0000  01 [09] 03"]
 * ```
 */
export function hexDiff(a: Uint8Array, b: Uint8Array, at: number, labels: [string, string]): string[] {
  const width = Math.max(labels[0].length, labels[1].length);
  const ra = hexRows(labels[0], a, at, width);
  const rb = hexRows(labels[1], b, at, width);
  return ra.flatMap((row, i) => [row, rb[i]]);
}
