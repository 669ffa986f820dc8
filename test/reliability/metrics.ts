// Reads the server's own account of an attack from GET /metrics: its event-loop lag (prom-client
// resets the lag histogram on every scrape, so a scrape before and one after bound the attack),
// garbage-collection pauses, CPU time, answer times measured inside the server, and upstream
// failures. This is how the suite tells a slow server from a slow client.
import { request } from 'undici';

export type Scrape = Map<string, number>;

export interface Health {
  status: 'ok' | 'degraded';
  warnings: string[];
  querylog: { mode: string; failing: boolean; lastError: string | null; writeErrors: number; rowsWritten: number };
}

/** GET /api/health: the server's own verdict and its warnings. */
export async function health(http: { host: string; port: number }): Promise<Health> {
  const res = await request(`http://${http.host}:${http.port}/api/health`);
  const body = (await res.body.json()) as Health;
  if (res.statusCode !== 200) throw new Error(`GET /api/health answered ${res.statusCode}: ${JSON.stringify(body)}`);
  return body;
}

export async function scrape(http: { host: string; port: number }): Promise<Scrape> {
  const res = await request(`http://${http.host}:${http.port}/metrics`);
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}: ${text.slice(0, 200)}`);
  const out: Scrape = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/** Sum of every sample whose name and labels start with `prefix` (e.g. 'hushdns_upstream_errors_total{'). */
export function total(s: Scrape, prefix: string, where: (key: string) => boolean = () => true): number {
  let n = 0;
  for (const [k, v] of s) if (k.startsWith(prefix) && where(k)) n += v;
  return n;
}

export interface ServerAccount {
  /** Worst event-loop stall between the two scrapes, less the monitor's 10 ms resolution. */
  eventLoopLagMaxMs: number;
  gcPauses: number;
  gcPauseMs: number;
  /** GC pauses longer than 100 ms. */
  gcOver100ms: number;
  /** CPU the server used, as a share of one core. */
  cpuShare: number;
  /** Answers the server itself timed at over 100 ms (receive to send, inside the process). */
  answersOver100ms: number;
  answers: number;
  upstreamFailures: number;
}

const LAG_RESOLUTION_MS = 10;

/** What the server says happened between two scrapes `ms` milliseconds apart. */
export function account(before: Scrape, after: Scrape, ms: number): ServerAccount {
  const d = (prefix: string, where?: (key: string) => boolean) => total(after, prefix, where) - total(before, prefix, where);
  const gcCount = d('nodejs_gc_duration_seconds_count');
  return {
    eventLoopLagMaxMs: Math.max(0, (after.get('nodejs_eventloop_lag_max_seconds') ?? 0) * 1000 - LAG_RESOLUTION_MS),
    gcPauses: gcCount,
    gcPauseMs: d('nodejs_gc_duration_seconds_sum') * 1000,
    gcOver100ms: gcCount - d('nodejs_gc_duration_seconds_bucket{le="0.1"'),
    cpuShare: d('process_cpu_seconds_total') / (ms / 1000),
    answersOver100ms: d('hushdns_answer_duration_seconds_count') - d('hushdns_answer_duration_seconds_bucket{le="0.1"}'),
    answers: d('hushdns_answer_duration_seconds_count'),
    upstreamFailures: d('hushdns_upstream_errors_total{'),
  };
}
