// Smoke run of the benchmark harness with tiny sizes, so its code paths cannot rot unnoticed. It
// asserts what the harness produces (files, answers, parsed reports), never how fast anything is.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../common/paths.js';
import { formatCompileTable, runCompileBench } from '../bench/compile.js';
import { summariseProfile } from '../bench/lib/cpuprofile.js';
import { Prober } from '../bench/lib/dns-probe.js';
import { parseSummary, percentile } from '../bench/lib/dnsperf.js';
import { generateNameArray, parseSize, sampleNames, writeGeneratedList } from '../bench/lib/names.js';
import { cpuTicks, rssKiB, runMeasured, stopAll } from '../bench/lib/proc.js';
import { fmtSpread, markdownTable, spread } from '../bench/lib/summary.js';
import { buildWorkloads } from '../bench/lib/workloads.js';
import { formatResult, runBench } from '../bench/run.js';
import { startStub, STUB_ADDRESS_TEXT } from '../bench/stub-upstream.js';

const work = mkdtempSync(join(tmpdir(), 'hushdns-bench-smoke-'));
afterAll(async () => {
  await stopAll();
  rmSync(work, { recursive: true, force: true });
});

const hasCommand = (c: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const built = existsSync(join(PACKAGE_ROOT, 'dist', 'cli.js')) && existsSync(join(PACKAGE_ROOT, 'dist', 'bench', 'stub-upstream.js'));
const canRunDns = built && hasCommand('dnsperf') && hasCommand('taskset');
if (!canRunDns) console.warn(`bench smoke: the end-to-end DNS run is skipped (needs \`npm run build\`, dnsperf and taskset; built=${built})`);

describe('the name generator', () => {
  it('gives the same distinct names for the same seed and different ones for another seed', () => {
    const a = generateNameArray(3000, 42);
    const b = generateNameArray(3000, 42);
    expect(a).toEqual(b);
    expect(new Set(a).size).toBe(3000);
    expect(generateNameArray(50, 43)).not.toEqual(a.slice(0, 50));
  });

  it('writes names of two to four labels (plus two-label suffixes) with digits, hyphens and underscores', () => {
    const names = generateNameArray(20_000, 7);
    for (const n of names) {
      const labels = n.split('.');
      expect(labels.length).toBeGreaterThanOrEqual(2);
      expect(labels.length).toBeLessThanOrEqual(5);
      expect(n).toMatch(/^[a-z0-9_.-]+$/);
      for (const l of labels) expect(l.length).toBeGreaterThan(0);
    }
    expect(names.some((n) => n.includes('_'))).toBe(true);
    expect(names.some((n) => /\d/.test(n))).toBe(true);
    expect(names.filter((n) => n.endsWith('.com')).length).toBeGreaterThan(names.length * 0.3);
    expect(names.some((n) => n.endsWith('.co.uk'))).toBe(true);
  });

  it('writes the same bytes on every run and reuses an identical earlier file', async () => {
    const dir = join(work, 'gen');
    const first = await writeGeneratedList(dir, 500, 'hosts', 99);
    expect(first.written).toBe(true);
    const text = readFileSync(first.path, 'utf8');
    expect(createHash('sha256').update(text).digest('hex')).toBe(first.sha256);
    expect(text.split('\n').filter((l) => l.startsWith('0.0.0.0 ')).length).toBe(500);
    const again = await writeGeneratedList(dir, 500, 'hosts', 99);
    expect(again.written).toBe(false);
    expect(again.sha256).toBe(first.sha256);
    rmSync(dir, { recursive: true });
    const rewritten = await writeGeneratedList(dir, 500, 'hosts', 99);
    expect(rewritten.written).toBe(true);
    expect(rewritten.sha256).toBe(first.sha256);
    const sample = await sampleNames(rewritten.path, 10, 500);
    expect(sample).toHaveLength(10);
    expect(text).toContain(`0.0.0.0 ${sample[3]}\n`);
  });

  it('can leave out every name that lies below another generated name', () => {
    const names = generateNameArray(20_000, 7, { independent: true });
    const set = new Set(names);
    expect(set.size).toBe(20_000);
    for (const n of names) {
      for (let i = n.indexOf('.'); i >= 0; i = n.indexOf('.', i + 1)) expect(set.has(n.slice(i + 1)), n).toBe(false);
    }
  });

  it('reads sizes as 100k, 1m, 5m or counts', () => {
    expect(parseSize('100k')).toBe(100_000);
    expect(parseSize('1M')).toBe(1_000_000);
    expect(parseSize('2500')).toBe(2500);
    expect(() => parseSize('lots')).toThrow(/size lots/);
  });
});

describe('the stub upstream and the probe', () => {
  it('answers an A question with its address and copies the question as sent', async () => {
    const stub = await startStub(0);
    const prober = await Prober.open();
    try {
      const a = await prober.ask(stub.port, 'Mixed.Case.example.org', 2000);
      expect(a).toEqual({ rcode: 0, address: STUB_ADDRESS_TEXT });
      expect(stub.answered()).toBe(1);
    } finally {
      prober.close();
      stub.socket.close();
    }
  });
});

describe('reading dnsperf and summarising runs', () => {
  it('parses dnsperf 2.10 statistics', () => {
    const r = parseSummary(`Statistics:

  Queries sent:         4000
  Queries completed:    3990 (99.75%)
  Queries lost:         10 (0.25%)

  Response codes:       NOERROR 3000 (75.19%), NXDOMAIN 990 (24.81%)
  Average packet size:  request 34, response 50
  Run time (s):         2.000146
  Queries per second:   1994.854

  Average Latency (s):  0.000189 (min 0.000045, max 0.000487)
`);
    expect(r).toMatchObject({ sent: 4000, completed: 3990, lost: 10, runSeconds: 2.000146, qps: 1994.854, rcodes: { NOERROR: 3000, NXDOMAIN: 990 } });
    expect(r.avgLatencyMs).toBeCloseTo(0.189, 6);
  });

  it('takes percentiles, medians and ranges', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 0.5)).toBe(50);
    expect(percentile(sorted, 0.99)).toBe(99);
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
    expect(spread([null, undefined, NaN])).toBeNull();
    expect(fmtSpread(spread([8.04, 7.9, 8.4]), 1)).toBe('8.0 (7.9–8.4)');
    expect(markdownTable(['a', 'b'], [['1', 'x|y']])).toBe('| a | b |\n|---|---|\n| 1 | x\\|y |');
  });

  it('sums self time per function from a V8 profile', () => {
    const file = join(work, 'tiny.cpuprofile');
    writeFileSync(
      file,
      JSON.stringify({
        nodes: [
          { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 3] },
          { id: 2, callFrame: { functionName: 'decide', url: `file://${PACKAGE_ROOT}/dist/server/blocklist.js`, lineNumber: 9 } },
          { id: 3, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
        ],
        startTime: 0,
        endTime: 4000,
        samples: [2, 2, 3, 2],
        timeDeltas: [1000, 1000, 1000, 1000],
      }),
    );
    const p = summariseProfile(file, PACKAGE_ROOT);
    expect(p.idleMs).toBe(1);
    expect(p.functions[0]).toEqual({ name: 'decide dist/server/blocklist.js:10', selfMs: 3, percent: 100 });
  });
});

describe('process measurement', () => {
  it('reports the peak memory and wall time of a child process', async () => {
    const r = await runMeasured(process.execPath, ['-e', 'const b = Buffer.alloc(80 * 1024 * 1024, 1); console.log(b[5])'], { timeoutMs: 20_000, timeFile: join(work, 'time.txt') });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('1');
    expect(r.peakKiB).toBeGreaterThan(80 * 1024);
    expect(r.wallMs).toBeGreaterThan(0);
    expect(cpuTicks([process.pid])).toBeGreaterThan(0);
    expect(rssKiB([process.pid])).toBeGreaterThan(1024);
  });
});

describe('query files', () => {
  it('builds every workload with new names where names must not repeat', () => {
    const dir = join(work, 'queries');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const ws = buildWorkloads({
      dir,
      blocked: ['ads.example.com', 'track.example.net'],
      allowed: ['example.org', 'example.edu'],
      telemetry: ['metrics.vendor.example'],
      throughputSeconds: 1,
      latencySeconds: 1,
      latencyQps: 100,
      maxQps: 200,
      seed: 1,
    });
    expect(ws.map((w) => w.id)).toEqual(['blocked', 'blocked-sub', 'cached', 'forwarded', 'home']);
    const fwd = ws.find((w) => w.id === 'forwarded')!;
    const tp = readFileSync(fwd.throughputFile, 'utf8').trim().split('\n');
    const lat = readFileSync(fwd.latencyFile, 'utf8').trim().split('\n');
    expect(tp).toHaveLength(200);
    expect(new Set([...tp, ...lat]).size).toBe(tp.length + lat.length);
    expect(readFileSync(ws[1].throughputFile, 'utf8')).toMatch(/^x\w+\.ads\.example\.com A\n/);
    const home = readFileSync(ws[4].throughputFile, 'utf8');
    expect(home).toContain('example.org A');
    expect(home).toContain('metrics.vendor.example A');
  });
});

describe('the compile benchmark', () => {
  it.skipIf(!built)('compiles a generated list and reports its time, memory and rules', async () => {
    const r = await runCompileBench({ cases: [400], peerSize: null, timeoutMs: 60_000, workDir: join(work, 'compile'), peersDir: join(work, 'peers'), resultsDir: null, log: () => {} });
    expect(r.cases).toHaveLength(1);
    expect(r.cases[0]).toMatchObject({ tool: 'hushdns', status: 'ok', inputNames: 400 });
    expect(r.cases[0].rules).toBeGreaterThan(390);
    expect(r.cases[0].peakMiB).toBeGreaterThan(10);
    expect(formatCompileTable(r)).toContain('| 400 generated hosts | hushdns | ok |');
  });
});

describe('the DNS benchmark end to end', () => {
  it.skipIf(!canRunDns)(
    'loads a tiny table into hushdns and the installed peers and measures every workload',
    async () => {
      const systems = ['hushdns' as const, ...(hasCommand('dnsmasq') ? (['dnsmasq'] as const) : []), ...(hasCommand('unbound') ? (['unbound'] as const) : [])];
      const r = await runBench({
        size: 300,
        runs: 1,
        durationS: 0.3,
        latencyS: 0.3,
        latencyQps: 500,
        systems,
        // forwarded takes the same code path as home (new names, one pass) and blocked-sub as blocked.
        workloads: ['blocked', 'cached', 'home'],
        profile: [],
        workDir: join(work, 'dns'),
        resultsDir: null,
        serverCpus: '0',
        clientCpus: '0',
        install: false,
        quietWaitMs: 0,
        warmupS: 0.2,
        queryTimeoutS: 0.3,
        log: () => {},
      });
      const hush = r.systems.find((s) => s.id === 'hushdns')!;
      expect(hush.unavailable).toBeNull();
      expect(hush.runs[0].error).toBeUndefined();
      expect(hush.runs[0].readyMs).toBeGreaterThan(0);
      for (const s of r.systems) {
        for (const w of r.workloads) {
          const m = s.summary.workloads[w.id]!;
          expect(m.unexpected, `${s.id} ${w.id}`).toBeUndefined();
          expect(m.qps?.median, `${s.id} ${w.id}`).toBeGreaterThan(0);
        }
      }
      expect(formatResult(r)).toContain('| hushdns (1 worker) |');
    },
    120_000,
  );
});
