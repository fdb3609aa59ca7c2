/**
 * What a UART decodes from bytes sent at another baud rate, bit by bit: the sender's 8N1
 * frames are laid on a line, the receiver finds each falling edge, samples the middle of its
 * own bit cells and reports a framing error (read as 0x00, as Linux's n_tty does without
 * PARMRK/IGNPAR) when the stop bit is low. Deterministic, so a garbled exchange replays
 * exactly.
 *
 * @module
 */

/**
 * Decode `data`, sent back to back at `txBaud`, with a receiver at `rxBaud`.
 *
 * @example
 * ```ts
 * misheard(Uint8Array.of(0x55), 115200, 115200); // [0x55]
 * misheard(Uint8Array.of(0x00), 115200, 230400); // [0x00, ...]: a long low start looks like 0x00 + framing error
 * ```
 */
export function misheard(data: Uint8Array, txBaud: number, rxBaud: number): Uint8Array {
  const totalBits = data.length * 10;
  /** Line level during sender bit cell `i` (idle high outside the data). */
  const level = (i: number): number => {
    if (i < 0 || i >= totalBits) return 1;
    const bit = i % 10;
    if (bit === 0) return 0;
    if (bit === 9) return 1;
    return (data[(i - bit) / 10] >> (bit - 1)) & 1;
  };
  /** Receiver bit cell in sender-bit units. */
  const cell = txBaud / rxBaud;
  const out: number[] = [];
  let from = 0;
  for (;;) {
    // next falling edge at or after `from`: a high cell followed by a low one
    let edge = -1;
    for (let b = Math.ceil(from); b < totalBits; b++) {
      if (level(b - 1) === 1 && level(b) === 0) {
        edge = b;
        break;
      }
    }
    if (edge < 0) break;
    const sample = (k: number) => level(Math.floor(edge + (k + 0.5) * cell));
    if (sample(0) !== 0) {
      from = edge + 0.5 * cell;
      continue;
    }
    let byte = 0;
    for (let k = 1; k <= 8; k++) byte |= sample(k) << (k - 1);
    out.push(sample(9) === 1 ? byte : 0);
    from = edge + 9.5 * cell;
  }
  return Uint8Array.from(out);
}
