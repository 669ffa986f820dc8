// `npm run bench`: the DNS benchmark of issue 8. hushdns, dnsmasq (address=/d/# and hosts file)
// and unbound (local-zone) are loaded with exactly the same compiled set (`hushdns export`),
// pinned to CPU 0 with dnsperf on CPU 1, and measured in the same run on the same workloads:
// QPS, server CPU per answered query (/proc/PID/stat deltas), p50/p99 at a fixed 10 000 q/s, RSS
// after loading and after the run, and time from start to the first correct answer. Medians of
// several runs with their range; a markdown table on stdout and JSON in bench-results/.
//
//   node dist/bench/run.js [--quick] [--size 100k|1m|5m] [--runs N] [--duration S]
//                          [--latency-duration S] [--systems a,b] [--workloads a,b] [--profile a,b]
import { spawnSync } from 'node:child_process';
import { closeSync, createReadStream, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { cpus as osCpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT } from '../common/paths.js';
import { Blocklist } from '../server/blocklist.js';
import { CORPUS_DIR, hageziNativeAdblock, hageziNativeDomains, hasCorpus, topSitesFile } from './lib/corpus.js';
import { summariseProfile, type ProfileSummary } from './lib/cpuprofile.js';
import { isBlockedAnswer, Prober, type ProbeAnswer } from './lib/dns-probe.js';
import { runDnsperf, type DnsperfResult } from './lib/dnsperf.js';
import { describeMachine, formatMachine, type Machine } from './lib/machine.js';
import { DEFAULT_SEED, nameOfLine, parseSize, sampleNames, sizeLabel, writeGeneratedList } from './lib/names.js';
import { ensureTools } from './lib/packages.js';
import { clockTicksPerSecond, cpuBusyTicks, cpuTicks, haveCommand, rssKiB, runMeasured, startProcess, stopAll, stopAllOnSignals, stopProcess, type Spawned } from './lib/proc.js';
import { atMost, fmtNumber, fmtSpread, markdownTable, mib, spread, type Spread, type Verdict } from './lib/summary.js';
import { SYSTEMS, startSystem, SystemStartError, type PreparedTable, type RunningSystem, type SystemDef, type SystemId } from './lib/systems.js';
import { buildWorkloads, WORKLOAD_IDS, WORKLOAD_LABELS, type Workload, type WorkloadId } from './lib/workloads.js';
import { STUB_ADDRESS_TEXT } from './stub-upstream.js';

export interface BenchOptions {
  size: number;
  runs: number;
  /** Unlimited-rate run per workload, seconds. */
  durationS: number;
  /** Fixed-rate latency run per workload, seconds. */
  latencyS: number;
  latencyQps: number;
  systems: SystemId[];
  workloads: WorkloadId[];
  /** Workloads to profile hushdns on afterwards (node --cpu-prof), empty for none. */
  profile: WorkloadId[];
  workDir: string;
  resultsDir: string | null;
  serverCpus: string;
  clientCpus: string;
  /** Install missing Debian packages with apt-get. */
  install: boolean;
  /** Longest wait for the server CPU to be idle before starting a system. */
  quietWaitMs: number;
  /** Unmeasured warm-up (blocked queries) after each start, seconds. */
  warmupS: number;
  /** dnsperf's per-query timeout (-t): an answer later than this counts as lost. */
  queryTimeoutS: number;
  log: (line: string) => void;
}

export interface WorkloadRun {
  skipped?: string;
  /** The probe's answer did not match what the workload assumes (reported, still measured). */
  unexpected?: string;
  qps?: number;
  completed?: number;
  lostPct?: number;
  cpuUsPerQuery?: number;
  serverCpuPct?: number;
  /** Busy time of the server's CPU not spent in the server process (other processes, softirq), % of the run. */
  otherCpuPct?: number;
  rcodes?: Record<string, number>;
  p50Ms?: number;
  p99Ms?: number;
  latencyQps?: number;
  latencyLostPct?: number;
}

export interface SystemRun {
  error?: string;
  /** Busy share of the server CPU (other work) just before the system was started. */
  idleBeforePct?: number;
  readyMs?: number;
  rssLoadedMiB?: number;
  rssAfterMiB?: number;
  processes?: number;
  workloads: Partial<Record<WorkloadId, WorkloadRun>>;
}

export interface SystemResult {
  id: SystemId;
  label: string;
  /** null when measured; otherwise why not (missing package, feature not implemented, …). */
  unavailable: string | null;
  runs: SystemRun[];
  summary: {
    readyMs: Spread | null;
    rssLoadedMiB: Spread | null;
    rssAfterMiB: Spread | null;
    workloads: Partial<Record<WorkloadId, { qps: Spread | null; cpuUsPerQuery: Spread | null; serverCpuPct: Spread | null; otherCpuPct: Spread | null; p50Ms: Spread | null; p99Ms: Spread | null; lostPct: Spread | null; skipped?: string; unexpected?: string }>>;
  };
}

export interface TargetRow {
  metric: string;
  target: string;
  value: string;
  verdict: Verdict;
}

export interface BenchResult {
  machine: Machine & { loadAverage: number[] };
  options: Omit<BenchOptions, 'log' | 'workDir' | 'resultsDir'>;
  table: { names: number; sha256: string; rules: number | null; compileWallMs: number; compilePeakMiB: number; sources: string[]; exports: Record<string, string> };
  workloads: { id: WorkloadId; label: string; lines: Workload['lines']; composition?: string }[];
  systems: SystemResult[];
  /** The targets checked for each hushdns configuration measured (default settings first). */
  targets: { system: SystemId; label: string; rows: TargetRow[] }[];
  profiles: { workload: WorkloadId; summary: ProfileSummary; file: string }[];
  notes: string[];
}

const CLI = join(PACKAGE_ROOT, 'dist', 'cli.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runCli(args: string[], timeoutMs: number): Promise<{ stdout: string; output: string; wallMs: number; peakMiB: number }> {
  const r = await runMeasured(process.execPath, [CLI, ...args], { timeoutMs, timeFile: join(tmpdir(), `hushdns-bench-time-${process.pid}.txt`) });
  if (r.timedOut) throw new Error(`hushdns ${args[0]} did not finish within ${timeoutMs / 1000} s`);
  if (r.code !== 0) throw new Error(`hushdns ${args.join(' ').slice(0, 300)} failed (${r.code}): ${r.output.slice(-1500)}`);
  return { stdout: r.stdout, output: r.output, wallMs: r.wallMs, peakMiB: mib(r.peakKiB) };
}

/** The last `0.0.0.0 name` line of a hosts export: loaded last, so answered last. */
function lastHostsName(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n').reverse();
    for (const l of lines) if (l.startsWith('0.0.0.0 ')) return l.slice(8).trim();
  } finally {
    closeSync(fd);
  }
  throw new Error(`${path} has no 0.0.0.0 lines near its end`);
}

async function readNames(path: string, limit: number): Promise<string[]> {
  const out: string[] = [];
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const l of rl) {
    const n = nameOfLine(l);
    if (n && !n.includes(',')) out.push(n.toLowerCase());
    if (out.length >= limit) break;
  }
  rl.close();
  return out;
}

interface Prepared {
  table: PreparedTable;
  info: BenchResult['table'];
  workloads: Workload[];
  notes: string[];
}

function scratchDir(opts: BenchOptions): string {
  return join(opts.workDir, `dns-${sizeLabel(opts.size)}-${process.pid}`);
}

async function prepare(opts: BenchOptions): Promise<Prepared> {
  const notes: string[] = [];
  const dir = scratchDir(opts);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // Adblock `||name^` so the generated names are subtree rules, as dnsmasq's address=/d/ and
  // unbound's local-zone are: the blocked-subdomain workload then means the same on every system.
  // None is below another, so N names stay N rules after compression (like published lists).
  const list = await writeGeneratedList(opts.workDir, opts.size, 'adblock', DEFAULT_SEED, { independent: true });
  opts.log(`list: ${sizeLabel(opts.size)} generated names (${list.path}, sha256 ${list.sha256.slice(0, 16)}…, ${list.written ? 'written' : 'reused'})`);
  const sources = [`${list.path}#adblock`];
  const corpus = hasCorpus();
  if (corpus) {
    for (const f of hageziNativeAdblock()) sources.push(`${f.path}#adblock`);
    opts.log(`plus ${sources.length - 1} hagezi native telemetry lists from ${CORPUS_DIR} (the home mix's telemetry)`);
  } else {
    notes.push(`corpus ${CORPUS_DIR} is absent: no telemetry lists, no top-sites; the home mix is skipped and cached names are synthetic`);
    opts.log(`corpus: ${CORPUS_DIR} is absent; home mix skipped, cached names synthetic`);
  }
  const dataDir = join(dir, 'data');
  const args = ['compile', '--data-dir', dataDir, '--no-default-sources', '--no-bundled', '--json', '--log-level', 'warn'];
  for (const s of sources) args.push('--source', s);
  opts.log('compiling the table with hushdns compile …');
  const compiled = await runCli(args, 1_800_000);
  let rules: number | null = null;
  try {
    rules = (JSON.parse(compiled.stdout) as { totals: { rules: number } }).totals.rules;
  } catch {
    // Reported as unknown.
  }
  opts.log(`  ${rules?.toLocaleString('en-US') ?? '?'} rules in ${(compiled.wallMs / 1000).toFixed(1)} s, peak ${compiled.peakMiB.toFixed(0)} MiB`);
  const exports: Record<string, string> = {};
  const files = { dnsmasq: join(dir, 'export.dnsmasq.conf'), hosts: join(dir, 'export.hosts'), unbound: join(dir, 'export.unbound.conf') };
  for (const [format, file] of Object.entries(files)) {
    const r = await runCli(['export', '--format', format, '-o', file, '--data-dir', dataDir], 600_000);
    exports[format] = r.output.trim().split('\n').pop() ?? '';
    opts.log(`  export ${format}: ${exports[format]} (${(r.wallMs / 1000).toFixed(1)} s)`);
  }
  const table: PreparedTable = { dataDir, dnsmasqConf: files.dnsmasq, hostsFile: files.hosts, unboundConf: files.unbound, readinessName: lastHostsName(files.hosts) };

  // Names for the workloads, checked against the table itself.
  const bl = Blocklist.open(join(dataDir, 'blocklist.sqlite'), { cacheSize: 0 });
  try {
    const blocked = (await sampleNames(files.hosts, 50_000, rules ?? opts.size)).filter((n) => bl.decide(n).action === 'block');
    let allowed: string[];
    let telemetry: string[] = [];
    const top = corpus ? topSitesFile() : null;
    if (top) {
      allowed = (await readNames(top, 8000)).filter((n) => bl.decide(n).action === 'none').slice(0, 5000);
      for (const f of hageziNativeDomains()) telemetry.push(...(await readNames(f.path, 100_000)));
      telemetry = [...new Set(telemetry)].filter((n) => bl.decide(n).action === 'block');
    } else {
      allowed = Array.from({ length: 3000 }, (_, i) => `www.site${i}.example.com`).filter((n) => bl.decide(n).action === 'none');
    }
    const wdir = join(dir, 'queries');
    mkdirSync(wdir, { recursive: true });
    const workloads = buildWorkloads({
      dir: wdir,
      blocked,
      allowed,
      telemetry,
      throughputSeconds: opts.durationS,
      latencySeconds: opts.latencyS,
      latencyQps: opts.latencyQps,
      maxQps: 80_000,
      seed: DEFAULT_SEED,
    }).filter((w) => opts.workloads.includes(w.id));
    for (const id of opts.workloads) if (!workloads.some((w) => w.id === id)) notes.push(`workload ${WORKLOAD_LABELS[id]} skipped: its inputs are missing (see above)`);
    return {
      table,
      info: { names: opts.size, sha256: list.sha256, rules, compileWallMs: compiled.wallMs, compilePeakMiB: compiled.peakMiB, sources: sources.map((s) => s.replace(`${CORPUS_DIR}/`, 'corpus/')), exports },
      workloads,
      notes,
    };
  } finally {
    bl.close();
  }
}

function answerMatches(w: Workload, a: ProbeAnswer | null): string | null {
  const shown = a ? `rcode ${a.rcode}${a.address ? `, A ${a.address}` : ''}` : 'no answer';
  if (w.expect === 'blocked') return a && isBlockedAnswer(a) ? null : `${w.probe}: expected a blocked answer, got ${shown}`;
  return a && a.rcode === 0 && a.address === STUB_ADDRESS_TEXT ? null : `${w.probe}: expected the upstream's ${STUB_ADDRESS_TEXT}, got ${shown}`;
}

async function warm(sys: RunningSystem, file: string, opts: BenchOptions): Promise<void> {
  await runDnsperf({ port: sys.port, file, seconds: 30, passes: 1, qps: 20_000, cpus: opts.clientCpus, timeout: opts.queryTimeoutS });
}

async function measureWorkload(sys: RunningSystem, w: Workload, opts: BenchOptions, prober: Prober): Promise<WorkloadRun> {
  if (w.needsSubtree && !sys.def.subtree) return { skipped: 'a hosts file blocks single names, not subdomains' };
  if (w.warmFile) await warm(sys, w.warmFile, opts);
  const probe = await prober.ask(sys.port, w.probe, 2000);
  const unexpected = answerMatches(w, probe) ?? undefined;
  const tck = clockTicksPerSecond();
  const serverCpu = Number(opts.serverCpus.split(/[-,]/)[0]);
  const before = cpuTicks(sys.pids());
  const cpuBefore = cpuBusyTicks(serverCpu);
  const tp: DnsperfResult = await runDnsperf({ port: sys.port, file: w.throughputFile, seconds: opts.durationS, passes: w.passes, outstanding: 200, cpus: opts.clientCpus, timeout: opts.queryTimeoutS });
  const ticks = cpuTicks(sys.pids()) - before;
  const cpuAfter = cpuBusyTicks(serverCpu);
  // Time the server's CPU spent on anything but the server's own process: other processes and
  // interrupt work. High values mean the run was disturbed (or the kernel did much of the work).
  const otherTicks = cpuBefore !== null && cpuAfter !== null ? cpuAfter - cpuBefore - ticks : null;
  const lat = await runDnsperf({
    port: sys.port,
    file: w.latencyFile,
    seconds: opts.latencyS,
    qps: opts.latencyQps,
    passes: w.passes,
    latencies: join(opts.workDir, `latency-${process.pid}.txt`),
    cpus: opts.clientCpus,
    timeout: opts.queryTimeoutS,
  });
  return {
    unexpected,
    qps: tp.qps,
    completed: tp.completed,
    lostPct: tp.sent > 0 ? (tp.lost / tp.sent) * 100 : 0,
    cpuUsPerQuery: tp.completed > 0 ? ((ticks / tck) * 1e6) / tp.completed : undefined,
    // Shares of the whole dnsperf process lifetime, the window the tick deltas cover.
    serverCpuPct: tp.wallSeconds > 0 ? (ticks / tck / tp.wallSeconds) * 100 : undefined,
    otherCpuPct: otherTicks !== null && tp.wallSeconds > 0 ? Math.max(0, (otherTicks / tck / tp.wallSeconds) * 100) : undefined,
    rcodes: tp.rcodes,
    p50Ms: lat.p50Ms,
    p99Ms: lat.p99Ms,
    latencyQps: lat.qps,
    latencyLostPct: lat.sent > 0 ? (lat.lost / lat.sent) * 100 : 0,
  };
}

/** Whether `hushdns serve` accepts --workers N at all (null) or why not. */
async function workersRejected(n: number): Promise<string | null> {
  const r = await runMeasured(process.execPath, [CLI, 'config', 'check', '--workers', String(n)], { timeoutMs: 30_000 });
  if (r.code === 0) return null;
  const why = r.output.split('\n').map((l) => l.trim()).filter((l) => l.includes('workers')).join(' ');
  return `\`hushdns serve --workers ${n}\` is refused (${why || `exit ${r.code}`}): multi-worker mode is not implemented yet`;
}

/**
 * Waits (at most `maxMs`) for the server CPU to be nearly idle, so other work on the machine
 * disturbs the measurement as little as possible; returns the busy share seen last.
 */
async function waitForQuietCpu(cpu: number, maxMs: number, log: (l: string) => void): Promise<number | null> {
  const deadline = Date.now() + maxMs;
  const tck = clockTicksPerSecond();
  let busy: number | null = null;
  for (;;) {
    const a = cpuBusyTicks(cpu);
    await sleep(500);
    const b = cpuBusyTicks(cpu);
    if (a === null || b === null) return null;
    busy = ((b - a) / tck / 0.5) * 100;
    if (busy < 15 || Date.now() >= deadline) break;
  }
  if (busy >= 15) log(`  CPU ${cpu} is ${busy.toFixed(0)}% busy with other work; measuring anyway (see the "other" column)`);
  return busy;
}

async function measureSystem(def: SystemDef, prep: Prepared, stubPort: number, opts: BenchOptions, prober: Prober): Promise<SystemRun | { unavailable: string }> {
  const run: SystemRun = { workloads: {} };
  if ((def.workers ?? 1) > 1) {
    const refused = await workersRejected(def.workers!);
    if (refused) return { unavailable: refused };
  }
  run.idleBeforePct = (await waitForQuietCpu(Number(opts.serverCpus.split(/[-,]/)[0]), opts.quietWaitMs, opts.log)) ?? undefined;
  // Several workers may use every core; one is pinned like the peers.
  const cpus = (def.workers ?? 1) > 1 ? `0-${Math.min(def.workers!, osCpus().length) - 1}` : opts.serverCpus;
  let sys: RunningSystem;
  try {
    sys = await startSystem(def, { table: prep.table, stubPort, cpus, workDir: opts.workDir, prober, readyTimeoutMs: 180_000 });
  } catch (err) {
    if (err instanceof SystemStartError) return { ...run, error: err.message };
    throw err;
  }
  try {
    run.readyMs = sys.readyMs;
    await sleep(300);
    const pids = sys.pids();
    run.processes = pids.length;
    run.rssLoadedMiB = mib(rssKiB(pids));
    if ((def.workers ?? 1) > 1 && pids.length < def.workers!) {
      return { unavailable: `\`hushdns serve --workers ${def.workers}\` runs ${pids.length} process(es): multi-worker mode is not implemented yet` };
    }
    const fwd = await prober.ask(sys.port, 'probe.new-names.example.net', 2000);
    if (!fwd || fwd.address !== STUB_ADDRESS_TEXT) run.error = `does not forward to the stub upstream (probe answer: ${fwd ? `rcode ${fwd.rcode} ${fwd.address ?? ''}` : 'none'})`;
    // Same JIT / allocator warm-up for every system: blocked queries, unmeasured.
    const blocked = prep.workloads.find((w) => w.id === 'blocked');
    if (blocked) await runDnsperf({ port: sys.port, file: blocked.throughputFile, seconds: opts.warmupS, outstanding: 200, cpus: opts.clientCpus, timeout: opts.queryTimeoutS });
    for (const w of prep.workloads) {
      if (sys.proc.hasExited()) {
        run.workloads[w.id] = { skipped: `server exited: ${sys.proc.output().slice(-300)}` };
        continue;
      }
      run.workloads[w.id] = await measureWorkload(sys, w, opts, prober);
      const r = run.workloads[w.id]!;
      opts.log(`    ${w.label}: ${r.skipped ? `skipped (${r.skipped})` : `${fmtNumber(r.qps ?? NaN, 0)} q/s, ${fmtNumber(r.cpuUsPerQuery ?? NaN, 1)} µs CPU/q (server ${fmtNumber(r.serverCpuPct ?? NaN, 0)}% busy, CPU ${opts.serverCpus} other ${fmtNumber(r.otherCpuPct ?? NaN, 0)}%), p50 ${fmtNumber(r.p50Ms ?? NaN, 3)} / p99 ${fmtNumber(r.p99Ms ?? NaN, 3)} ms${r.lostPct ? `, ${r.lostPct.toFixed(2)}% lost` : ''}${r.unexpected ? ` — UNEXPECTED: ${r.unexpected}` : ''}`}`);
    }
    run.rssAfterMiB = mib(rssKiB(sys.pids()));
    return run;
  } finally {
    await sys.stop();
  }
}

async function startStub(cpus: string): Promise<{ proc: Spawned; port: number }> {
  const script = join(PACKAGE_ROOT, 'dist', 'bench', 'stub-upstream.js');
  const proc = haveCommand('taskset') ? startProcess('taskset', ['-c', cpus, process.execPath, script]) : startProcess(process.execPath, [script]);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const m = /\{"port":(\d+)\}/.exec(proc.stdout());
    if (m) return { proc, port: Number(m[1]) };
    if (proc.hasExited()) break;
    await sleep(20);
  }
  await stopProcess(proc);
  throw new Error(`stub upstream did not start: ${proc.output().slice(-500)}`);
}

async function profileHushdns(w: Workload, prep: Prepared, stubPort: number, opts: BenchOptions, prober: Prober): Promise<BenchResult['profiles'][number] | null> {
  const dir = join(opts.workDir, `cpuprof-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const sys = await startSystem(SYSTEMS.hushdns, { table: prep.table, stubPort, cpus: opts.serverCpus, workDir: opts.workDir, prober, readyTimeoutMs: 180_000, nodeFlags: ['--cpu-prof', '--cpu-prof-dir', dir] });
  let window: { fromMs: number; toMs: number } | undefined;
  try {
    const blocked = prep.workloads.find((x) => x.id === 'blocked');
    if (blocked) await runDnsperf({ port: sys.port, file: blocked.throughputFile, seconds: 1, outstanding: 200, cpus: opts.clientCpus, timeout: opts.queryTimeoutS });
    if (w.warmFile) await warm(sys, w.warmFile, opts);
    const from = performance.now() - sys.startedAt;
    await runDnsperf({ port: sys.port, file: w.throughputFile, seconds: opts.durationS, passes: w.passes, outstanding: 200, cpus: opts.clientCpus, timeout: opts.queryTimeoutS });
    window = { fromMs: from, toMs: performance.now() - sys.startedAt };
  } finally {
    await sys.stop();
  }
  const found = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  const file = found ? join(dir, found) : null;
  if (!file) {
    opts.log('profile: node wrote no .cpuprofile (did the server exit cleanly on SIGTERM?)');
    return null;
  }
  // The profile starts a little after the spawn, so the window is approximate (tens of ms).
  return { workload: w.id, summary: summariseProfile(file, PACKAGE_ROOT, 20, window), file };
}

function summarise(id: SystemId, runs: SystemRun[], unavailable: string | null, workloads: Workload[]): SystemResult {
  const wsum: SystemResult['summary']['workloads'] = {};
  for (const w of workloads) {
    const rs = runs.map((r) => r.workloads[w.id]).filter((x): x is WorkloadRun => x !== undefined);
    const skipped = rs.find((r) => r.skipped)?.skipped;
    const unexpected = rs.find((r) => r.unexpected)?.unexpected;
    const measured = rs.filter((r) => !r.skipped);
    wsum[w.id] = {
      qps: spread(measured.map((r) => r.qps)),
      cpuUsPerQuery: spread(measured.map((r) => r.cpuUsPerQuery)),
      serverCpuPct: spread(measured.map((r) => r.serverCpuPct)),
      otherCpuPct: spread(measured.map((r) => r.otherCpuPct)),
      p50Ms: spread(measured.map((r) => r.p50Ms)),
      p99Ms: spread(measured.map((r) => r.p99Ms)),
      lostPct: spread(measured.map((r) => r.lostPct)),
      ...(measured.length === 0 && skipped ? { skipped } : {}),
      ...(unexpected ? { unexpected } : {}),
    };
  }
  return {
    id,
    label: SYSTEMS[id].label,
    unavailable,
    runs,
    summary: {
      readyMs: spread(runs.map((r) => r.readyMs)),
      rssLoadedMiB: spread(runs.map((r) => r.rssLoadedMiB)),
      rssAfterMiB: spread(runs.map((r) => r.rssAfterMiB)),
      workloads: wsum,
    },
  };
}

function targets(res: SystemResult | undefined, size: number): TargetRow[] {
  const rows: TargetRow[] = [];
  const at1m = size === 1_000_000 ? '' : ` (target set for 1M names; this run: ${sizeLabel(size)})`;
  const s = res?.summary;
  const wl = (id: WorkloadId) => s?.workloads[id];
  const add = (metric: string, target: string, v: number | null | undefined, limit: number, unit: string, digits: number) =>
    rows.push({ metric, target, value: v === null || v === undefined ? '—' : `${fmtNumber(v, digits)}${unit}`, verdict: atMost(v, limit) });
  for (const id of ['blocked', 'blocked-sub', 'cached'] as const) add(`CPU per query, ${WORKLOAD_LABELS[id]}`, '≤ 12 µs', wl(id)?.cpuUsPerQuery?.median, 12, ' µs', 1);
  add(`RSS with the table loaded${at1m}`, '≤ 80 MB', s?.rssLoadedMiB?.median, 80, ' MiB', 0);
  add(`RSS after the run${at1m}`, '≤ 80 MB', s?.rssAfterMiB?.median, 80, ' MiB', 0);
  add(`start to first correct answer${at1m}`, '≤ 0.5 s', s?.readyMs ? s.readyMs.median / 1000 : null, 0.5, ' s', 2);
  for (const id of ['blocked', 'blocked-sub', 'cached'] as const) add(`p99 at 10 000 q/s, ${WORKLOAD_LABELS[id]}`, '≤ 1 ms', wl(id)?.p99Ms?.median, 1, ' ms', 3);
  return rows;
}

export function formatResult(r: BenchResult): string {
  const out: string[] = [];
  const measured = r.systems.filter((s) => !s.unavailable);
  const wids = r.workloads.map((w) => w.id);
  const cell = (s: SystemResult, id: WorkloadId, pick: (x: NonNullable<SystemResult['summary']['workloads'][WorkloadId]>) => Spread | null, digits: number) => {
    const w = s.summary.workloads[id];
    if (!w) return '—';
    if (w.skipped) return '—';
    return `${fmtSpread(pick(w), digits)}${w.unexpected ? ' ⚠' : ''}`;
  };
  out.push(`## DNS benchmark: ${sizeLabel(r.options.size)} generated names${r.table.rules !== null ? ` (${r.table.rules.toLocaleString('en-US')} rules with the telemetry lists)` : ''}`);
  out.push('');
  out.push(formatMachine(r.machine) + ` Load average at start: ${r.machine.loadAverage.map((x) => x.toFixed(2)).join(', ')}.`);
  out.push('');
  out.push(`Server pinned to CPU ${r.options.serverCpus}, dnsperf and the stub upstream on CPU ${r.options.clientCpus}. ${r.options.runs} run(s): median (min–max). Unlimited-rate runs of ${r.options.durationS} s, latency runs of ${r.options.latencyS} s at ${r.options.latencyQps.toLocaleString('en-US')} q/s.`);
  out.push('');
  out.push('### Server CPU per answered query (µs, lower is better), memory and start-up');
  out.push('');
  const cpuHeaders = ['system', ...wids.map((id) => WORKLOAD_LABELS[id]), 'RSS loaded (MiB)', 'RSS after (MiB)', 'ready (s)'];
  const cpuRows = measured.map((s) => [
    s.label,
    ...wids.map((id) => cell(s, id, (w) => w.cpuUsPerQuery, 1)),
    fmtSpread(s.summary.rssLoadedMiB, 0),
    fmtSpread(s.summary.rssAfterMiB, 0),
    s.summary.readyMs ? fmtSpread({ ...s.summary.readyMs, median: s.summary.readyMs.median / 1000, min: s.summary.readyMs.min / 1000, max: s.summary.readyMs.max / 1000 }, 2) : '—',
  ]);
  cpuRows.push(['target (hushdns)', ...wids.map((id) => (id === 'blocked' || id === 'blocked-sub' || id === 'cached' ? '≤ 12' : '')), '≤ 80 MB', '≤ 80 MB', '≤ 0.5']);
  for (const s of r.systems.filter((x) => x.unavailable)) cpuRows.push([s.label, ...wids.map(() => 'not available'), '', '', '']);
  out.push(markdownTable(cpuHeaders, cpuRows));
  out.push('');
  out.push('### Throughput (answered queries per second, unlimited rate)');
  out.push('');
  out.push(`In parentheses: the server process's CPU use / other busy time on CPU ${r.options.serverCpus} (other processes, interrupts and softirq network work) during the run.`);
  out.push('');
  out.push(markdownTable(['system', ...wids.map((id) => WORKLOAD_LABELS[id])], measured.map((s) => [s.label, ...wids.map((id) => {
    const w = s.summary.workloads[id];
    if (!w || w.skipped) return '—';
    return `${fmtSpread(w.qps, 0)} (${fmtNumber(w.serverCpuPct?.median ?? NaN, 0)}% / ${fmtNumber(w.otherCpuPct?.median ?? NaN, 0)}%${w.lostPct && w.lostPct.median > 0.5 ? `, ${w.lostPct.median.toFixed(1)}% lost` : ''})`;
  })])));
  out.push('');
  out.push(`### Latency at ${r.options.latencyQps.toLocaleString('en-US')} q/s: p50 / p99 (ms)`);
  out.push('');
  out.push(markdownTable(['system', ...wids.map((id) => WORKLOAD_LABELS[id])], measured.map((s) => [s.label, ...wids.map((id) => {
    const w = s.summary.workloads[id];
    if (!w || w.skipped) return '—';
    return `${fmtSpread(w.p50Ms, 3)} / ${fmtSpread(w.p99Ms, 3)}`;
  })])));
  out.push('');
  out.push('### Targets (issue 8) for hushdns');
  out.push('');
  if (r.targets.length > 0) {
    const headers = ['metric', 'target', ...r.targets.flatMap((t) => [t.label, 'met'])];
    const rows = r.targets[0].rows.map((row, i) => [row.metric, row.target, ...r.targets.flatMap((t) => [t.rows[i].value, t.rows[i].verdict])]);
    out.push(markdownTable(headers, rows));
  }
  out.push('');
  out.push(`Table: ${r.table.sources.length} source(s), compiled in ${(r.table.compileWallMs / 1000).toFixed(1)} s (peak ${r.table.compilePeakMiB.toFixed(0)} MiB); exports: ${Object.entries(r.table.exports).map(([k, v]) => `${k}: ${v.replace(/^exported /, '')}`).join('; ')}.`);
  for (const w of r.workloads) if (w.composition) out.push(`Home mix: ${w.composition}.`);
  for (const s of r.systems) {
    if (s.unavailable) out.push(`${s.label}: not available — ${s.unavailable}.`);
    for (const [i, run] of s.runs.entries()) if (run.error) out.push(`${s.label}, run ${i + 1}: ${run.error}`);
    for (const [id, w] of Object.entries(s.summary.workloads)) {
      if (w?.skipped) out.push(`${s.label}, ${WORKLOAD_LABELS[id as WorkloadId]}: not measured (${w.skipped}).`);
      if (w?.unexpected) out.push(`${s.label}, ${WORKLOAD_LABELS[id as WorkloadId]}: ⚠ ${w.unexpected}.`);
    }
  }
  for (const n of r.notes) out.push(n);
  for (const prof of r.profiles) {
    const p = prof.summary;
    out.push('');
    out.push(`### hushdns CPU profile, ${WORKLOAD_LABELS[prof.workload]} workload, unlimited-rate run only (self time; ${(p.totalMs - p.idleMs).toFixed(0)} ms busy, ${p.idleMs.toFixed(0)} ms idle, GC ${p.gcMs.toFixed(0)} ms)`);
    out.push('');
    out.push(markdownTable(['function', 'self ms', '% of busy'], p.functions.map((f) => [f.name, f.selfMs.toFixed(0), f.percent.toFixed(1)])));
    out.push('');
    out.push(markdownTable(['file', 'self ms', '% of busy'], p.files.map((f) => [f.name, f.selfMs.toFixed(0), f.percent.toFixed(1)])));
    out.push('');
    out.push(`Profile: ${prof.file}`);
  }
  return out.join('\n');
}

export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} does not exist: run \`npm run build\` first`);
  const notes: string[] = [];
  const tools = opts.install ? ensureTools(['dnsperf', 'taskset', 'dnsmasq', 'unbound'], opts.log) : null;
  if (!haveCommand('dnsperf')) throw new Error(`dnsperf is not available${tools ? ` (${tools.get('dnsperf')?.note})` : ''}; the DNS benchmark needs it (Debian package dnsperf)`);
  if (!haveCommand('taskset')) throw new Error('taskset is not available (Debian package util-linux); the benchmark pins the server and the load generator');
  for (const t of tools?.values() ?? []) if (t.note !== 'present') notes.push(`${t.command}: ${t.note}`);
  const machine = { ...describeMachine(['dnsperf', 'dnsmasq', 'unbound']), loadAverage: loadavg() };
  opts.log(formatMachine(machine));
  // The table, its exports and the query files live here for this run only.
  const scratch = scratchDir(opts);
  try {
    const prep = await prepare(opts);
    notes.push(...prep.notes);
    const stub = await startStub(opts.clientCpus);
    opts.log(`stub upstream on 127.0.0.1:${stub.port} (CPU ${opts.clientCpus})`);
    const prober = await Prober.open();
    const runsBySystem = new Map<SystemId, SystemRun[]>();
    const unavailable = new Map<SystemId, string>();
    for (const id of opts.systems) {
      const missing = SYSTEMS[id].needs.filter((c) => !haveCommand(c));
      if (missing.length > 0) unavailable.set(id, `${missing.join(', ')} not installed${tools ? ` (${missing.map((m) => tools.get(m)?.note ?? '').join('; ')})` : ''}`);
      runsBySystem.set(id, []);
    }
    const profiles: BenchResult['profiles'] = [];
    try {
      for (let run = 1; run <= opts.runs; run++) {
        for (const id of opts.systems) {
          if (unavailable.has(id)) continue;
          opts.log(`run ${run}/${opts.runs}: ${SYSTEMS[id].label}`);
          const r = await measureSystem(SYSTEMS[id], prep, stub.port, opts, prober);
          if ('unavailable' in r) {
            unavailable.set(id, r.unavailable);
            opts.log(`  not available: ${r.unavailable}`);
            continue;
          }
          if (r.error) opts.log(`  ${r.error}`);
          else opts.log(`  ready ${(r.readyMs! / 1000).toFixed(2)} s, RSS ${r.rssLoadedMiB!.toFixed(0)} → ${r.rssAfterMiB!.toFixed(0)} MiB`);
          runsBySystem.get(id)!.push(r);
        }
      }
      for (const id of opts.profile) {
        const w = prep.workloads.find((x) => x.id === id);
        if (!w) {
          notes.push(`profile: workload ${id} is not part of this run`);
          continue;
        }
        opts.log(`profiling hushdns on the ${w.label} workload (node --cpu-prof)`);
        try {
          const p = await profileHushdns(w, prep, stub.port, opts, prober);
          if (p) profiles.push(p);
        } catch (err) {
          notes.push(`profile of ${id} failed: ${(err as Error).message.slice(0, 500)}`);
          opts.log(`  profile failed: ${(err as Error).message}`);
        }
      }
    } finally {
      prober.close();
      await stopProcess(stub.proc);
    }
    const systems = opts.systems.map((id) => summarise(id, runsBySystem.get(id)!, unavailable.get(id) ?? null, prep.workloads));
    const result: BenchResult = {
      machine,
      options: { size: opts.size, runs: opts.runs, durationS: opts.durationS, latencyS: opts.latencyS, latencyQps: opts.latencyQps, systems: opts.systems, workloads: opts.workloads, profile: opts.profile, serverCpus: opts.serverCpus, clientCpus: opts.clientCpus, install: opts.install, quietWaitMs: opts.quietWaitMs, warmupS: opts.warmupS, queryTimeoutS: opts.queryTimeoutS },
      table: prep.info,
      workloads: prep.workloads.map((w) => ({ id: w.id, label: w.label, lines: w.lines, composition: w.composition })),
      systems,
      targets: systems.filter((s) => s.id.startsWith('hushdns') && !s.unavailable).map((s) => ({ system: s.id, label: s.label, rows: targets(s, opts.size) })),
      profiles,
      notes,
    };
    if (opts.resultsDir) {
      mkdirSync(opts.resultsDir, { recursive: true });
      const file = join(opts.resultsDir, `dns-${sizeLabel(opts.size)}-${machine.date.replace(/[:.]/g, '-')}.json`);
      writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
      opts.log(`results: ${file}`);
    }
    return result;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function parseList<T extends string>(v: string, allowed: readonly T[], what: string): T[] {
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!(allowed as readonly string[]).includes(i)) throw new Error(`unknown ${what} ${i}; use ${allowed.join(', ')}`);
  return items as T[];
}

const USAGE = `node dist/bench/run.js [options]
  --quick                 100k names, 1 run, 2 s + 1.5 s per workload (about 2 minutes)
  --size 100k|1m|5m       generated list size (default 1m)
  --runs N                runs per system; medians and min–max are reported (default 3)
  --duration S            unlimited-rate run per workload, seconds (default 5)
  --latency-duration S    fixed-rate (10 000 q/s) latency run per workload, seconds (default 3)
  --systems a,b           ${Object.keys(SYSTEMS).join(', ')} (default: all)
  --workloads a,b         ${WORKLOAD_IDS.join(', ')} (default: all)
  --profile a,b           afterwards, run hushdns under node --cpu-prof on these workloads and list its hot functions
  --no-install            do not apt-get install missing tools
  --work-dir DIR          scratch directory (default: $TMPDIR/hushdns-bench)
`;

export function parseArgs(argv: string[], log: (l: string) => void): BenchOptions {
  const quick = argv.includes('--quick');
  const o: BenchOptions = {
    size: quick ? 100_000 : 1_000_000,
    runs: quick ? 1 : 3,
    durationS: quick ? 2 : 5,
    latencyS: quick ? 1.5 : 3,
    latencyQps: 10_000,
    systems: Object.keys(SYSTEMS) as SystemId[],
    workloads: [...WORKLOAD_IDS],
    profile: [],
    workDir: join(tmpdir(), 'hushdns-bench'),
    resultsDir: join(PACKAGE_ROOT, 'bench-results'),
    serverCpus: '0',
    clientCpus: osCpus().length > 1 ? '1' : '0',
    install: true,
    quietWaitMs: 5000,
    warmupS: 1,
    queryTimeoutS: 1,
    log,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') continue;
    else if (a === '--size') o.size = parseSize(next());
    else if (a === '--runs') o.runs = Math.max(1, Math.min(20, Number(next()) || 1));
    else if (a === '--duration') o.durationS = Math.max(0.5, Math.min(120, Number(next()) || 5));
    else if (a === '--latency-duration') o.latencyS = Math.max(0.5, Math.min(120, Number(next()) || 3));
    else if (a === '--systems') o.systems = parseList(next(), Object.keys(SYSTEMS) as SystemId[], 'system');
    else if (a === '--workloads') o.workloads = parseList(next(), WORKLOAD_IDS, 'workload');
    else if (a === '--profile') o.profile = parseList(next(), WORKLOAD_IDS, 'workload');
    else if (a === '--no-install') o.install = false;
    else if (a === '--work-dir') o.workDir = next();
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  return o;
}

/** Keep the harness itself (and the dnsperf it spawns) off the server's CPU. */
function pinSelf(cpus: string, log: (l: string) => void): void {
  if (!haveCommand('taskset')) return;
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) log(`could not pin the harness to CPU ${cpus}: ${r.stderr?.trim()}`);
}

async function main(): Promise<void> {
  const log = (l: string) => process.stderr.write(`${l}\n`);
  stopAllOnSignals();
  const opts = parseArgs(process.argv.slice(2), log);
  pinSelf(opts.clientCpus, log);
  const started = Date.now();
  try {
    const result = await runBench(opts);
    process.stdout.write(`\n${formatResult(result)}\n`);
    log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await stopAll();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch(async (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    await stopAll();
    process.exitCode = 1;
  });
}
