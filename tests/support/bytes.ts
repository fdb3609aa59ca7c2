/**
 * Byte-array assertions that stay fast on megabytes: a failure names the first differing
 * offset instead of diffing the whole arrays.
 *
 * @module
 */

import assert from "node:assert/strict";

/** Assert that `actual` and `expected` hold the same bytes. */
export function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what = "bytes"): void {
  assert.equal(
    actual.length,
    expected.length,
    `${what}: ${actual.length} bytes, expected ${expected.length}`,
  );
  const i = actual.findIndex((b, k) => b !== expected[k]);
  assert.equal(
    i,
    -1,
    `${what}: differ first at offset 0x${i.toString(16)} (0x${actual[i]?.toString(16)} ≠ 0x${
      expected[i]?.toString(16)
    })`,
  );
}
