/**
 * What connecting, switching the baud rate and identifying tell the user on the way.
 *
 * @module
 */

/** Something worth telling the user while connecting or identifying. */
export type SessionEvent =
  | { type: "reset"; strategy: "modem-pulse" | "reboot-text"; message: string }
  | { type: "hint"; message: string }
  | { type: "linked"; attempts: number; ms: number; message: string }
  | { type: "baud"; baud: number; message: string }
  | { type: "baud-retry"; baud: number; attempt: number; message: string }
  | { type: "baud-fallback"; requested: number; baud: number; message: string }
  | { type: "warning"; message: string };
