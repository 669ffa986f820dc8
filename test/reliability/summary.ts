// The reliability suite's summary: one row per attack, filled only from what the tests measured
// (counts they sent, the server's RSS read from /proc, latencies their clients timed, counters the
// server reported). Printed as a markdown table and written as JSON for CI and `npm run soak`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export const SUMMARY_JSON = resolve(import.meta.dirname, '../../test-results/reliability-summary.json');
/** The same table as markdown, for `npm run soak` to print once vitest is done. */
export const SUMMARY_MD = SUMMARY_JSON.replace(/\.json$/, '.md');

export interface AttackRow {
  attack: string;
  /** Packets, queries or requests sent during the attack. */
  sent: number;
  unit: 'packets' | 'queries' | 'requests' | 'connections' | 'bytes' | 'swaps' | 'kills';
  /** Server processes that died without being asked to (must be 0). */
  crashes: number;
  /** Slowest valid query answered during the attack; null where no valid query was timed. */
  maxLatencyMs: number | null;
  /**
   * The same less the time the server or the timing client sat runnable without a CPU while that
   * query was in flight (Linux schedstat): what the server itself is answerable for.
   */
  maxServerLatencyMs: number | null;
  /** Share of the attack's time some task on the machine waited for a CPU (PSI); null without PSI. */
  cpuPressure: number | null;
  rssBeforeMb: number | null;
  rssAfterMb: number | null;
  /** Failed upstream exchanges (timeouts, garbage, forgeries, truncations) the server rode out. */
  upstreamFaults: number | null;
  /** Valid queries that got no answer or SERVFAIL while the table was being swapped. */
  lostInSwaps: number | null;
  /** What else a reader needs: why a number is what it is (measured, never a verdict). */
  note?: string;
}

const rows: AttackRow[] = [];

export function recordAttack(row: AttackRow): void {
  rows.push(row);
}

/** A server that exited before it answered: a crash, with the reason it gave. */
export function recordFailedStart(attack: string, err: unknown): void {
  const last = String((err as Error).message ?? err)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .find((l) => l.startsWith('hushdns:'));
  rows.push({ attack, sent: 0, unit: 'queries', crashes: 1, maxLatencyMs: null, maxServerLatencyMs: null, cpuPressure: null, rssBeforeMb: null, rssAfterMb: null, upstreamFaults: null, lostInSwaps: null, note: `exited at start: ${last ?? 'see the test output'}` });
}

export function attackRows(): readonly AttackRow[] {
  return rows;
}

const num = (v: number | null, digits = 0): string => (v === null ? '–' : v.toFixed(digits));

export function summaryMarkdown(list: readonly AttackRow[] = rows): string {
  const head = '| attack | sent | crashes | max valid-query latency (ms) | less CPU waits (ms) | machine CPU pressure | RSS before → after (MB) | upstream faults survived | queries lost in swaps |';
  const rule = '|---|---:|---:|---:|---:|---:|---|---:|---:|';
  const body = list.map((r) => {
    const rss = r.rssBeforeMb === null ? '–' : `${num(r.rssBeforeMb)} → ${num(r.rssAfterMb)}`;
    const attack = r.note ? `${r.attack} (${r.note})` : r.attack;
    const pressure = r.cpuPressure === null ? '–' : `${Math.round(r.cpuPressure * 100)} %`;
    return `| ${attack} | ${r.sent.toLocaleString('en-US')} ${r.unit} | ${r.crashes} | ${num(r.maxLatencyMs, 1)} | ${num(r.maxServerLatencyMs, 1)} | ${pressure} | ${rss} | ${num(r.upstreamFaults)} | ${num(r.lostInSwaps)} |`;
  });
  return [head, rule, ...body].join('\n');
}

export function writeSummary(meta: Record<string, unknown>, list: readonly AttackRow[] = rows): string {
  mkdirSync(dirname(SUMMARY_JSON), { recursive: true });
  writeFileSync(SUMMARY_JSON, `${JSON.stringify({ ...meta, attacks: list }, null, 2)}\n`);
  writeFileSync(SUMMARY_MD, `${summaryMarkdown(list)}\n`);
  return SUMMARY_JSON;
}
