// The query files the DNS benchmark sends (dnsperf's `name TYPE` lines), built once per table:
//
// - blocked: names the table blocks by their own rule (sampled across the whole list);
// - blocked-sub: a new label under each of those, blocked only through a subtree rule;
// - cached: allowed names the stub upstream answers, sent once beforehand so they are cached;
// - forwarded: a new name on every query (never repeated within a server's life), so each one
//   goes to the upstream;
// - home: a household's mix from the top-sites ranking — mostly popular allowed names (Zipf-like,
//   warmed), some vendor telemetry (hagezi native lists, blocked), some names never seen before.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from './names.js';

export const WORKLOAD_IDS = ['blocked', 'blocked-sub', 'cached', 'forwarded', 'home'] as const;
export type WorkloadId = (typeof WORKLOAD_IDS)[number];

export const WORKLOAD_LABELS: Record<WorkloadId, string> = {
  blocked: 'blocked',
  'blocked-sub': 'blocked subdomain',
  cached: 'cached allowed',
  forwarded: 'forwarded (cache miss)',
  home: 'home mix',
};

/** What a correct answer to the workload's names looks like. */
export type Expectation = 'blocked' | 'answered' | 'mix';

export interface Workload {
  id: WorkloadId;
  label: string;
  /** File for the unlimited-rate run. */
  throughputFile: string;
  /** File for the fixed-rate latency run (different new names where names must be new). */
  latencyFile: string;
  /** 1 when names must not repeat (dnsperf -n 1); otherwise the file is looped. */
  passes?: number;
  /** Names sent once before measuring so they are in every cache. */
  warmFile?: string;
  expect: Expectation;
  /** A name to check each system's answer against `expect` before measuring. */
  probe: string;
  /** Only systems whose blocking covers subtrees can answer it as blocked. */
  needsSubtree?: boolean;
  lines: { throughput: number; latency: number };
  composition?: string;
}

export interface WorkloadInputs {
  dir: string;
  /** Names the table blocks by their own rule. */
  blocked: string[];
  /** Allowed (not listed) names in popularity order, e.g. top sites. */
  allowed: string[];
  /** Telemetry names the table blocks (hagezi native lists), empty without the corpus. */
  telemetry: string[];
  /** Longest unlimited-rate run in seconds and the highest rate expected, to size new-name files. */
  throughputSeconds: number;
  latencySeconds: number;
  latencyQps: number;
  maxQps: number;
  seed: number;
}

const line = (name: string) => `${name} A\n`;

function writeLines(path: string, names: Iterable<string>): number {
  let text = '';
  let n = 0;
  for (const name of names) {
    text += line(name);
    n++;
  }
  writeFileSync(path, text);
  return n;
}

/** `count` names that exist nowhere: a fresh label per query under a domain no list has. */
function* newNames(prefix: string, count: number): Generator<string> {
  for (let i = 0; i < count; i++) yield `${prefix}${i.toString(36)}.c${i % 97}.new-names.example.net`;
}

/** Index into a list of `n` by a Zipf-like (s = 1) popularity, from a uniform r in [0, 1). */
function zipfIndex(r: number, n: number): number {
  // Inverse of the continuous approximation H(x) ≈ ln(x) + γ, normalised over [1, n].
  const x = Math.exp(r * Math.log(n + 1)) - 1;
  return Math.min(n - 1, Math.floor(x));
}

export function buildWorkloads(inp: WorkloadInputs): Workload[] {
  const out: Workload[] = [];
  const { dir } = inp;
  const uniqueThroughput = Math.ceil(inp.throughputSeconds * inp.maxQps);
  const uniqueLatency = Math.ceil(inp.latencySeconds * inp.latencyQps * 1.2) + 1000;

  if (inp.blocked.length > 0) {
    const f = join(dir, 'blocked.txt');
    const n = writeLines(f, inp.blocked);
    out.push({ id: 'blocked', label: WORKLOAD_LABELS.blocked, throughputFile: f, latencyFile: f, expect: 'blocked', probe: inp.blocked[inp.blocked.length >> 1], lines: { throughput: n, latency: n } });
    const fs = join(dir, 'blocked-sub.txt');
    const subs = inp.blocked.map((name, i) => `x${(i * 7919).toString(36)}.${name}`);
    const ns = writeLines(fs, subs);
    out.push({ id: 'blocked-sub', label: WORKLOAD_LABELS['blocked-sub'], throughputFile: fs, latencyFile: fs, expect: 'blocked', probe: subs[subs.length >> 1], needsSubtree: true, lines: { throughput: ns, latency: ns } });
  }

  if (inp.allowed.length > 0) {
    const cachedNames = inp.allowed.slice(0, 2000);
    const f = join(dir, 'cached.txt');
    const n = writeLines(f, cachedNames);
    out.push({ id: 'cached', label: WORKLOAD_LABELS.cached, throughputFile: f, latencyFile: f, warmFile: f, expect: 'answered', probe: cachedNames[0], lines: { throughput: n, latency: n } });
  }

  const ft = join(dir, 'forwarded-throughput.txt');
  const fl = join(dir, 'forwarded-latency.txt');
  const nt = writeLines(ft, newNames('t', uniqueThroughput));
  const nl = writeLines(fl, newNames('l', uniqueLatency));
  out.push({ id: 'forwarded', label: WORKLOAD_LABELS.forwarded, throughputFile: ft, latencyFile: fl, passes: 1, expect: 'answered', probe: 'probe.new-names.example.net', lines: { throughput: nt, latency: nl } });

  if (inp.allowed.length > 0 && inp.telemetry.length > 0) {
    const popular = inp.allowed.slice(0, 3000);
    const warm = join(dir, 'home-warm.txt');
    writeLines(warm, popular);
    const mix = (prefix: string, count: number): Generator<string> => {
      const rnd = seededRandom(inp.seed ^ prefix.charCodeAt(0));
      let fresh = 0;
      return (function* () {
        for (let i = 0; i < count; i++) {
          const r = rnd();
          if (r < 0.85) yield popular[zipfIndex(rnd(), popular.length)];
          else if (r < 0.95) yield inp.telemetry[Math.floor(rnd() * inp.telemetry.length)];
          else yield `${prefix}${(fresh++).toString(36)}.home-new.example.org`;
        }
      })();
    };
    const ht = join(dir, 'home-throughput.txt');
    const hl = join(dir, 'home-latency.txt');
    const n1 = writeLines(ht, mix('h', uniqueThroughput));
    const n2 = writeLines(hl, mix('k', uniqueLatency));
    out.push({
      id: 'home',
      label: WORKLOAD_LABELS.home,
      throughputFile: ht,
      latencyFile: hl,
      passes: 1,
      warmFile: warm,
      expect: 'mix',
      probe: popular[0],
      lines: { throughput: n1, latency: n2 },
      composition: `85% ${popular.length} popular allowed names (Zipf s=1, warmed), 10% of ${inp.telemetry.length} telemetry names (blocked), 5% new names`,
    });
  }
  return out;
}
