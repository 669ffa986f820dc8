// The compile report as people read it: one row per source, then totals.
import type { CompileReport, SourceReport } from './compile.js';

function formatTable(headers: string[], rows: string[][], rightAlign: Set<number> = new Set()): string {
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

/** Names added and removed for the list since the last build, or the net change in entries when they were not counted. */
function change(s: SourceReport): string {
  if (s.added !== null && s.removed !== null) return s.added === 0 && s.removed === 0 ? '0' : `+${n(s.added)} -${n(s.removed)}`;
  if (s.entriesDelta === null) return '';
  return `net ${s.entriesDelta > 0 ? '+' : ''}${n(s.entriesDelta)}`;
}

function sourceRow(s: SourceReport): string[] {
  const notes = [
    s.error,
    s.canary.length ? `canary names dropped: ${s.canary.join(', ')}` : null,
    s.canaryPatterns.length ? `patterns guarded against canary names: ${s.canaryPatterns.length}` : null,
    s.unsupported ? `unsupported: ${reasons(s.unsupportedByReason)}` : null,
  ]
    .filter(Boolean)
    .join('; ');
  const filtered = s.excluded + s.notIncluded;
  return [
    s.id,
    s.status,
    s.format ?? '?',
    n(s.entries),
    change(s),
    s.invalid ? `${n(s.invalid)} (${reasons(s.invalidByReason)})` : '0',
    filtered === 0 ? '0' : s.notIncluded === 0 ? n(s.excluded) : `${n(filtered)} (${n(s.notIncluded)} not included)`,
    notes,
  ];
}

export function formatReport(report: Omit<CompileReport, 'ok'>): string {
  const table = formatTable(
    ['source', 'status', 'format', 'entries', 'change', 'invalid', 'excluded', 'notes'],
    report.sources.map(sourceRow),
    new Set([3, 4, 6]),
  );
  const t = report.totals;
  const seconds = `${(report.ms / 1000).toFixed(2)} s`;
  const lines = [table, ''];
  if (report.written) {
    const diff = t.added === null ? '' : `, +${n(t.added)} / -${n(t.removed ?? 0)} names since the last build`;
    lines.push(
      `${n(t.rules)} rules (${n(t.entries)} entries, ${n(t.duplicates)} duplicates merged, ${n(t.compressed)} covered by a parent rule), ${n(t.patterns)} patterns${diff}`,
      `${report.path} (${(t.bytes / 1048576).toFixed(1)} MiB) written in ${seconds}`,
    );
    if (t.diffSkipped !== null) lines.push(`names added/removed ${t.diffSkipped}; the change column shows the net change in entries`);
  } else {
    lines.push(`nothing written after ${seconds}: ${report.path} is the table from before`);
  }
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}
