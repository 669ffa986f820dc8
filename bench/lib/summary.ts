// Medians with their spread over runs, and markdown tables: the form every benchmark prints.

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Runs behind the numbers. */
  n: number;
}

/** Median and range of the finite values; null when there are none. */
export function spread(values: (number | null | undefined)[]): Spread | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1], n: v.length };
}

export function fmtNumber(x: number, digits: number): string {
  if (!Number.isFinite(x)) return '—';
  if (Math.abs(x) >= 1000 && digits <= 1) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(digits);
}

/** "8.1 (7.9–8.4)" for several runs, "8.1" for one, "—" for none. */
export function fmtSpread(s: Spread | null, digits: number, unit = ''): string {
  if (!s) return '—';
  const m = `${fmtNumber(s.median, digits)}${unit}`;
  if (s.n < 2) return m;
  return `${m} (${fmtNumber(s.min, digits)}–${fmtNumber(s.max, digits)})`;
}

export function markdownTable(headers: string[], rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [`| ${headers.map(esc).join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

export type Verdict = 'met' | 'missed' | 'n/a';

/** met / missed for "at most `limit`", n/a when nothing was measured. */
export function atMost(value: number | null | undefined, limit: number): Verdict {
  if (value === null || value === undefined || !Number.isFinite(value)) return 'n/a';
  return value <= limit ? 'met' : 'missed';
}

export function mib(kib: number): number {
  return kib / 1024;
}
