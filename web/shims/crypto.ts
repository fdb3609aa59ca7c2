/**
 * The `node:crypto` subset the core uses, for the browser build (`web/build.ts` maps
 * `node:crypto` here): AES-128-ECB without padding, as the Tuya storage decoder asks for it
 * (`createDecipheriv("aes-128-ecb", key, null)`, `setAutoPadding(false)`, `update`, `final`),
 * on npm:aes-js. Anything else throws, so a new use shows up in the page's test.
 *
 * @module
 */

import aesjs from "aes-js";

/** The cipher object `createCipheriv` / `createDecipheriv` return. */
export interface EcbCipher {
  setAutoPadding(on: boolean): EcbCipher;
  update(data: Uint8Array): Uint8Array;
  final(): Uint8Array;
}

function ecb(algorithm: string, key: Uint8Array, encrypt: boolean): EcbCipher {
  if (algorithm !== "aes-128-ecb" || key.length !== 16) {
    throw new Error(`the browser build supports aes-128-ecb only, not ${algorithm}`);
  }
  const mode = new aesjs.ModeOfOperation.ecb(Array.from(key));
  let padding = true;
  return {
    setAutoPadding(on: boolean) {
      padding = on;
      return this;
    },
    update(data: Uint8Array) {
      if (padding || data.length % 16 !== 0) {
        throw new Error("the browser build supports whole 16-byte blocks without padding only");
      }
      const out = encrypt ? mode.encrypt(data) : mode.decrypt(data);
      return new Uint8Array(out);
    },
    final: () => new Uint8Array(0),
  };
}

/** `node:crypto`'s `createCipheriv` for AES-128-ECB (the IV is ignored, as ECB has none). */
export function createCipheriv(algorithm: string, key: Uint8Array, _iv: null): EcbCipher {
  return ecb(algorithm, key, true);
}

/** `node:crypto`'s `createDecipheriv` for AES-128-ECB (the IV is ignored, as ECB has none). */
export function createDecipheriv(algorithm: string, key: Uint8Array, _iv: null): EcbCipher {
  return ecb(algorithm, key, false);
}
