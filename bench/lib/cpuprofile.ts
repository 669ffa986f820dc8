// Reads a V8 .cpuprofile (node --cpu-prof) and sums self time per function and per file, so the
// benchmark can say what dominates hushdns's CPU per query without opening DevTools.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface HotSpot {
  name: string;
  selfMs: number;
  percent: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Time in (idle), (program) and (garbage collector), as V8 labels them. */
  idleMs: number;
  gcMs: number;
  functions: HotSpot[];
  files: HotSpot[];
}

function where(url: string, root: string): string {
  if (url === '') return '(native)';
  let p = url;
  if (url.startsWith('file://')) {
    try {
      p = fileURLToPath(url);
    } catch {
      // Keep the URL.
    }
  }
  const rel = relative(root, p);
  return rel.startsWith('..') ? p : rel;
}

/**
 * `window` keeps only the samples taken between `fromMs` and `toMs` after the profile started
 * (e.g. one benchmark run, leaving out start-up and warm-up).
 */
export function summariseProfile(path: string, root: string, top = 15, window?: { fromMs: number; toMs: number }): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let at = 0;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0;
    if (window && (at < window.fromMs * 1000 || at > window.toMs * 1000)) continue;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + (deltas[i] ?? 0));
  }
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let gc = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    total += us;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') idle += us;
    if (name === '(garbage collector)') gc += us;
    const loc = where(n.callFrame.url, root);
    const key = n.callFrame.url ? `${name} ${loc}:${n.callFrame.lineNumber + 1}` : name;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const fileKey = n.callFrame.url ? loc : name;
    file.set(fileKey, (file.get(fileKey) ?? 0) + us);
  }
  const busy = Math.max(1, total - idle);
  const rank = (m: Map<string, number>) =>
    [...m]
      .filter(([k]) => k !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: us / 1000, percent: (us / busy) * 100 }));
  return { totalMs: total / 1000, idleMs: idle / 1000, gcMs: gc / 1000, functions: rank(fn), files: rank(file) };
}
