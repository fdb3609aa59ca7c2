/**
 * Tuya storage values: typed decoding (JSON, Tuya's unquoted `user_param_key` JSON, text,
 * binary), and which leaves are secrets (Wi-Fi credentials, device keys) to mask. Key names:
 * docs/dump-formats.md §5.
 *
 * @module
 */

/** A decoded value: JSON-like data, text, or binary (hex). */
export type TuyaValue = string | number | boolean | null | TuyaValue[] | { [k: string]: TuyaValue };

/**
 * Parse Tuya's unquoted JSON (`{Jsonver:1.0.0,module:CB2S,rl1_pin:6,...}`): every run of
 * characters other than `{}[]:,` is a token; tokens that are decimal integers become numbers.
 */
export function parseTuyaJson(text: string): TuyaValue {
  let i = 0;
  const token = (): string => {
    const start = i;
    while (i < text.length && !"{}[]:,".includes(text[i])) i++;
    return text.slice(start, i).trim().replace(/^"(.*)"$/, "$1");
  };
  const scalar = (t: string): TuyaValue => (/^(0|-?[1-9][0-9]{0,14})$/.test(t) ? Number(t) : t);
  const value = (): TuyaValue => {
    if (text[i] === "{") {
      i++;
      const o: Record<string, TuyaValue> = {};
      while (i < text.length && text[i] !== "}") {
        const k = token();
        if (text[i] !== ":") throw new SyntaxError(`expected ':' after "${k}" at ${i}`);
        i++;
        o[k] = value();
        if (text[i] === ",") i++;
      }
      if (text[i] !== "}") throw new SyntaxError("unterminated object");
      i++;
      return o;
    }
    if (text[i] === "[") {
      i++;
      const a: TuyaValue[] = [];
      while (i < text.length && text[i] !== "]") {
        a.push(value());
        if (text[i] === ",") i++;
      }
      if (text[i] !== "]") throw new SyntaxError("unterminated array");
      i++;
      return a;
    }
    return scalar(token());
  };
  const v = value();
  if (text.slice(i).trim() !== "") throw new SyntaxError(`trailing text at ${i}`);
  return v;
}

/** How a value was decoded. */
export type ValueKind = "json" | "tuya-json" | "text" | "binary";

/** Decode one raw value into a typed one. */
export function decodeValue(raw: Uint8Array): { kind: ValueKind; value: TuyaValue } {
  let end = raw.length;
  while (end > 0 && raw[end - 1] === 0) end--;
  const b = raw.subarray(0, end);
  const printable = b.every((c) => (c >= 0x20 && c < 0x7f) || c === 0x0a || c === 0x0d || c === 0x09);
  if (!printable) {
    return {
      kind: "binary",
      value: `hex:${Array.from(b, (c) => c.toString(16).padStart(2, "0")).join("")}`,
    };
  }
  const text = new TextDecoder().decode(b);
  try {
    return { kind: "json", value: JSON.parse(text) as TuyaValue };
  } catch { /* not standard JSON: try Tuya's unquoted form next */ }
  if (text.startsWith("{")) {
    try {
      return { kind: "tuya-json", value: parseTuyaJson(text) };
    } catch { /* neither form: keep the text */ }
  }
  return { kind: "text", value: text };
}

/** Leaf keys whose values are secrets (Wi-Fi credentials, Tuya device secrets). */
export const SECRET_KEY =
  /(^|_)(id|psk|auzkey|uuid|ssid|passwd|password|pwd|pass|token|secret|sec_key|local_?key|actv?_?key|devkey|key)(_|$)|key$/i;

/**
 * Keys that match {@link SECRET_KEY} but hold no secret: server addresses next to a PSK
 * (`mq_psk_ip`), and the product schema id (`s_id`, also the name of a storage value).
 */
export const NOT_SECRET_KEY = /(_ip|_url|_host|_port)$|^s_id$/i;

/** Replace every secret leaf of `v` by a mask (its length only). */
export function maskSecrets(v: TuyaValue, key = ""): TuyaValue {
  if (Array.isArray(v)) return v.map((x) => maskSecrets(x, key));
  if (v !== null && typeof v === "object") {
    const o: Record<string, TuyaValue> = {};
    for (const [k, x] of Object.entries(v)) o[k] = maskSecrets(x, k);
    return o;
  }
  if (key && SECRET_KEY.test(key) && !NOT_SECRET_KEY.test(key) && v !== null && v !== "") {
    return `<masked: ${String(v).length} chars>`;
  }
  return v;
}

/** The secret leaves of `v` (what {@link maskSecrets} masks), at least `min` characters long. */
export function secretLeaves(v: TuyaValue, key = "", min = 4): string[] {
  if (Array.isArray(v)) return v.flatMap((x) => secretLeaves(x, key, min));
  if (v !== null && typeof v === "object") {
    return Object.entries(v).flatMap(([k, x]) => secretLeaves(x, k, min));
  }
  if (key && SECRET_KEY.test(key) && !NOT_SECRET_KEY.test(key) && v !== null && String(v).length >= min) {
    return [String(v)];
  }
  return [];
}
