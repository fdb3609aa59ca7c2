/**
 * The three faces of a {@link HilReport}: a console table (scenario × result × time), the
 * `--json` object, and JUnit XML for CI systems.
 *
 * @module
 */

import type { HilReport, ScenarioResult } from "./runner.ts";

/** "0.21 s", "1 min 12 s", "—". */
export function formatMs(ms: number | null): string {
  if (ms === null) return "—";
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

const MARK: Record<ScenarioResult["status"], string> = { passed: "pass", failed: "FAIL", skipped: "skip" };

/**
 * The console table, one line per scenario, then notes of failures and a summary.
 *
 * @example
 * ```ts
 * console.log(formatTable(report));
 * ```
 */
export function formatTable(report: HilReport): string {
  const time = report.timeKind === "modelled" ? "modelled" : "real";
  const rows = report.scenarios.map((s) => [
    s.id,
    MARK[s.status],
    formatMs(s.ms),
    s.status === "passed" ? s.notes.join("; ") : s.reason ?? "",
  ]);
  const head = ["scenario", "result", `time (${time})`, "details"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => i < 3 ? r[i].length : 0)));
  const line = (r: string[]) => r.map((c, i) => i < 3 ? c.padEnd(widths[i]) : c).join("  ").trimEnd();
  const out = [
    `HIL ${report.target}  chip ${report.chip}  path ${report.path}  (${report.bench} bench)`,
    line(head),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
  ];
  for (const s of report.scenarios) {
    if (s.status === "failed" && s.remedy) out.push(`  ${s.id}: remedy: ${s.remedy}`);
  }
  if (report.backup) out.push(`backup: ${report.backup.location} (CRC ${report.backup.crc32})`);
  if (report.restore) out.push(`restore: ${report.restore.message}`);
  out.push(
    `${report.scenarios.length} scenarios: ${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped` +
      ` (${formatMs(report.totalMs)} ${time})`,
  );
  return out.join("\n");
}

/** The `--json` object. */
export function toJson(report: HilReport): Record<string, unknown> {
  return {
    target: report.target,
    chip: report.chip,
    path: report.path,
    bench: report.bench,
    timeKind: report.timeKind,
    passed: report.passed,
    failed: report.failed,
    skipped: report.skipped,
    ok: report.failed === 0 && report.error === null,
    totalMs: round(report.totalMs),
    scenarios: report.scenarios.map((s) => ({
      id: s.id,
      title: s.title,
      status: s.status,
      ms: s.ms === null ? null : round(s.ms),
      destructive: s.destructive,
      ...(s.reason ? { reason: s.reason } : {}),
      ...(s.remedy ? { remedy: s.remedy } : {}),
      notes: s.notes,
    })),
    backup: report.backup,
    restore: report.restore,
    error: report.error,
  };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Escape text for XML character data and attribute values (and drop characters XML 1.0 forbids). */
export function xmlEscape(text: string): string {
  return text
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/**
 * JUnit XML: one `<testsuite>` for the run, one `<testcase>` per scenario with `<skipped>`
 * or `<failure>`, and notes in `<system-out>`. Times are in seconds, modelled on virtual
 * benches (the `timeKind` property says which).
 */
export function toJunit(report: HilReport, timestamp = new Date()): string {
  const a = (v: string | number) => `"${xmlEscape(String(v))}"`;
  const secs = (ms: number | null) => ((ms ?? 0) / 1000).toFixed(3);
  const suite = `hil ${report.target} ${report.chip} ${report.path}`;
  const errors = report.error ? 1 : 0;
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="bekenlab-hil" tests=${a(report.scenarios.length)} failures=${
      a(report.failed)
    } errors=${a(errors)} skipped=${a(report.skipped)} time=${a(secs(report.totalMs))}>`,
    `  <testsuite name=${a(suite)} tests=${a(report.scenarios.length)} failures=${a(report.failed)} errors=${
      a(errors)
    } skipped=${a(report.skipped)} time=${a(secs(report.totalMs))} timestamp=${
      a(timestamp.toISOString().replace(/\.\d+Z$/, ""))
    }>`,
    `    <properties>`,
    ...Object.entries({
      target: report.target,
      chip: report.chip,
      path: report.path,
      bench: report.bench,
      timeKind: report.timeKind,
    }).map(([k, v]) => `      <property name=${a(k)} value=${a(v)}/>`),
    `    </properties>`,
  ];
  const cls = `hil.${report.chip}.${report.path}`;
  for (const s of report.scenarios) {
    const open = `    <testcase classname=${a(cls)} name=${a(s.id)} time=${a(secs(s.ms))}`;
    const body: string[] = [];
    if (s.status === "skipped") body.push(`      <skipped message=${a(s.reason ?? "")}/>`);
    if (s.status === "failed") {
      body.push(
        `      <failure message=${a(firstLine(s.reason ?? "failed"))} type="ScenarioFailure">${
          xmlEscape([s.reason ?? "", s.remedy ? `remedy: ${s.remedy}` : ""].filter(Boolean).join("\n"))
        }</failure>`,
      );
    }
    if (s.notes.length) body.push(`      <system-out>${xmlEscape(s.notes.join("\n"))}</system-out>`);
    out.push(body.length ? `${open}>\n${body.join("\n")}\n    </testcase>` : `${open}/>`);
  }
  if (report.error) {
    out.push(
      `    <system-err>${
        xmlEscape(`${report.error.code}: ${report.error.message}\nremedy: ${report.error.remedy}`)
      }</system-err>`,
    );
  }
  out.push(`  </testsuite>`, `</testsuites>`, "");
  return out.join("\n");
}

function firstLine(s: string): string {
  return s.split("\n")[0];
}
