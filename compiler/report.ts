// The compile report as people read it: one row per source, then totals.
import type { CompileReport, SourceReport } from './compile.js';

export function formatTable(headers: string[], rows: string[][], rightAlign: Set<number> = new Set()): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (rightAlign.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const n = (x: number) => x.toLocaleString('en-US');

function reasons(byReason: Record<string, number>): string {
  return Object.entries(byReason)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([r, c]) => `${r} ${n(c)}`)
    .join(', ');
}

function sourceRow(s: SourceReport): string[] {
  const delta = s.entriesDelta === null ? '' : s.entriesDelta > 0 ? `+${n(s.entriesDelta)}` : n(s.entriesDelta);
  const notes = [s.error, s.canary.length ? `canary names dropped: ${s.canary.join(', ')}` : null, s.unsupported ? `unsupported: ${reasons(s.unsupportedByReason)}` : null]
    .filter(Boolean)
    .join('; ');
  return [s.id, s.status, s.format ?? '?', n(s.entries), delta, s.invalid ? `${n(s.invalid)} (${reasons(s.invalidByReason)})` : '0', s.excluded ? n(s.excluded) : '0', notes];
}

export function formatReport(report: Omit<CompileReport, 'ok'>): string {
  const table = formatTable(
    ['source', 'status', 'format', 'entries', 'change', 'invalid', 'excluded', 'notes'],
    report.sources.map(sourceRow),
    new Set([3, 4, 6]),
  );
  const t = report.totals;
  const diff = t.added === null ? '' : `, +${n(t.added)} / -${n(t.removed ?? 0)} names since the last build`;
  const lines = [
    table,
    '',
    `${n(t.rules)} rules (${n(t.entries)} entries, ${n(t.duplicates)} duplicates merged, ${n(t.compressed)} covered by a parent rule), ${n(t.patterns)} patterns${diff}`,
    `${report.path} (${(t.bytes / 1048576).toFixed(1)} MiB) in ${(report.ms / 1000).toFixed(2)} s`,
  ];
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}
