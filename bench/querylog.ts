// Query-log benchmark (issue 5): a week of a household's queries (10 million rows, the names of
// the top-sites list) written through the writer's own batch path; /api/summary, /api/devices and
// /api/top timed end to end over HTTP against `hushdns serve` reading that log, for 24 h and 7 d;
// then the server at its full rate (dnsperf, or a Node UDP client when dnsperf is missing) to see
// whether the log keeps up without drops and how often it writes per flush interval.
//
//   npm run bench:querylog [-- --rows N] [--duration S] [--rate-only] [--keep]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { PACKAGE_ROOT } from '../common/paths.js';
import { VendorCatalog } from '../common/vendors.js';
import { compile } from '../compiler/compile.js';
import { fromArgument } from '../compiler/sources.js';
import type { Answer, Outcome, Query } from '../server/pipeline/types.js';
import { BYTES_PER_ROW, DESIGN_RATE, QUERYLOG_FILE, queueRows } from '../server/querylog/querylog.js';
import { Recorder } from '../server/querylog/recorder.js';
import { QueryLogStore } from '../server/querylog/store.js';
import type { ParsedQuery } from '../server/wire/query.js';
import { CORPUS_DIR, hasCorpus, topSitesFile } from './lib/corpus.js';
import { percentile } from './lib/dnsperf.js';
import { describeMachine, formatMachine } from './lib/machine.js';
import { seededRandom } from './lib/names.js';
import { startStub } from './stub-upstream.js';

interface Options {
  rows: number;
  durationS: number;
  keep: boolean;
  /** Run only the full-rate part (no 10M-row log). */
  rateOnly: boolean;
  /** Internal: only fill the log in this folder (run in a child, so the timing process stays small). */
  generateInto: string | null;
}

/** Rows per write: about what the writer gets per 5 s interval from a busy household. */
const BATCH = 50_000;
const DAYS = 7;
const CLIENTS = 40;
/** Top-site domains the household visits; each gives one to five host names. */
const WEB_DOMAINS = 12_000;
const TRACKERS = 3_000;
const DEFAULT_FLUSH_S = 5;
/** querylog-queue at its default, `auto` (0): sized from the flush interval. */
const DEFAULT_QUEUE = 0;
const LISTS = ['hagezi-light', 'easyprivacy', 'oisd-small'];
const HTTP_RUNS = 40;
const GENERATE_RESULT = 'generate.json';

function parseArgs(argv: string[]): Options {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return { rows: Number(get('--rows') ?? 10_000_000), durationS: Number(get('--duration') ?? 10), keep: argv.includes('--keep'), rateOnly: argv.includes('--rate-only'), generateInto: get('--generate-into') ?? null };
}

// ---- the household ------------------------------------------------------------------------------

interface Rule {
  reason: string;
  lists: string[];
  action: 'block' | 'allow';
}

interface Workload {
  clients: string[];
  /** Host names of the web, most popular first (Zipf). */
  web: string[];
  /** Ad and tracker names (Zipf), blocked by a list rule unless an allow rule lets them through. */
  trackers: string[];
  /** Per client: telemetry names of the vendors its device talks to. */
  clientNames: string[][];
  rules: Map<string, Rule>;
  source: string;
}

/** Domains of a list file, comments skipped (top-sites: one per line in rank order). */
function readDomains(path: string, want: number, skip: Set<string> = new Set()): string[] {
  const out: string[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const d = line.trim().toLowerCase();
    if (d === '' || d.startsWith('#') || skip.has(d)) continue;
    out.push(d);
    if (out.length >= want) break;
  }
  return out;
}

/**
 * 40 devices; the web from the top-sites list (about 30 000 host names, a few very popular),
 * trackers from hagezi's light list (a twentieth of them let through by an allow rule), and per
 * device the telemetry of the 2–5 vendors it talks to (most of it blocked). A week of it is
 * 25–40 thousand distinct names, as a household sees.
 */
function workload(catalog: VendorCatalog): Workload {
  const r = seededRandom(42);
  const sites = topSitesFile();
  const domains = sites ? readDomains(sites, WEB_DOMAINS) : Array.from({ length: WEB_DOMAINS }, (_, i) => `site${i}.example`);
  const web: string[] = [];
  const subs = ['www', 'api', 'cdn', 'static', 'img', 'm'];
  domains.forEach((d, rank) => {
    web.push(`www.${d}`);
    // Popular sites come with more host names.
    const extra = rank < 500 ? 4 : rank < 3000 ? 2 : rank % 3 === 0 ? 1 : 0;
    for (let k = 1; k <= extra; k++) web.push(`${subs[k]}.${d}`);
  });
  const hagezi = join(CORPUS_DIR, 'hagezi', 'domains', 'light.txt');
  const trackers = existsSync(hagezi) ? readDomains(hagezi, TRACKERS, new Set(domains)) : Array.from({ length: TRACKERS }, (_, i) => `t${i}.tracker${i % 300}.example`);
  const rules = new Map<string, Rule>();
  trackers.forEach((t, i) => {
    const lists = [LISTS[i % LISTS.length], ...(i % 4 === 0 ? [LISTS[(i + 1) % LISTS.length]] : [])];
    rules.set(t, i % 20 === 7 ? { reason: `@@||${t}^ (allowlist-fixes)`, lists: ['allowlist-fixes'], action: 'allow' } : { reason: `||${t}^ (${lists.join(', ')})`, lists, action: 'block' });
  });
  const vendors = catalog.vendors.filter((v) => v.suffixes.length > 0);
  const clientNames: string[][] = [];
  for (let c = 0; c < CLIENTS; c++) {
    const names: string[] = [];
    const count = 2 + Math.floor(r() * 4);
    for (let k = 0; k < count && vendors.length > 0; k++) {
      const v = vendors[Math.floor(r() * vendors.length)];
      for (const suffix of v.suffixes.slice(0, 3)) {
        for (let j = 0; j < 12; j++) {
          const name = `${['api', 'log', 'data', 'tracking', 'cdn', 'sdk'][j % 6]}${j}.${suffix}`;
          names.push(name);
          if (j % 3 !== 0) rules.set(name, { reason: `||${suffix}^ (hagezi-native-${v.id})`, lists: [`hagezi-native-${v.id}`], action: 'block' });
        }
      }
    }
    clientNames.push(names);
  }
  const clients = Array.from({ length: CLIENTS }, (_, i) => `192.168.1.${10 + i}`);
  return { clients, web, trackers, clientNames, rules, source: sites ? `top sites ${sites}, trackers ${existsSync(hagezi) ? hagezi : 'generated'}` : 'generated names (no corpus)' };
}

/** Zipf (s = 1) over n ranks: the inverse of the harmonic CDF, by binary search. */
function zipf(n: number, r: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / (i + 1);
  return () => {
    const x = r() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function fakeQuery(name: string, client: string, qtype: number): Query {
  const q: ParsedQuery = { id: 1, flags: 0x0100, opcode: 0, rd: true, cd: false, ad: false, name, qtype, qclass: 1, questionEnd: 0, edns: null };
  return { msg: Buffer.alloc(0), q, client: { address: client, port: 40000, family: 4 }, protocol: 'udp', receivedAt: 0 };
}

// ---- output -------------------------------------------------------------------------------------

interface Row {
  [k: string]: string | number;
}

function table(title: string, rows: Row[]): void {
  const cols = Object.keys(rows[0] ?? {});
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(width[i])).join(' | ')} |`;
  process.stdout.write(`\n${title}\n\n${line(cols)}\n|${width.map((w) => '-'.repeat(w + 2)).join('|')}|\n${rows.map((r) => line(cols.map((c) => String(r[c])))).join('\n')}\n`);
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits }) : '–');
const pct = (xs: number[], p: number) => percentile([...xs].sort((a, b) => a - b), p / 100);

// ---- phase 1: the log, filled through the writer's batch path -------------------------------------

interface Generated {
  rows: number;
  rowsPerS: number;
  cpuUsPerRow: number;
  batchMsP50: number;
  batchMsMax: number;
  fileBytes: number;
  distinctNames: number;
  distinctPerHour: number;
  direct: Record<string, { p50: number; max: number }>;
}

/** Recorder → Batch → QueryLogStore.write, as the writer thread does it; then the reads straight on the store. */
function generate(dir: string, opts: Options, catalog: VendorCatalog): void {
  const w = workload(catalog);
  process.stderr.write(`  workload: ${w.source}\n`);
  const r = seededRandom(7);
  const webRank = zipf(w.web.length, r);
  const trackerRank = zipf(w.trackers.length, r);
  const recorder = new Recorder({
    capacity: BATCH,
    anonymise: 'off',
    excludeClients: [],
    excludeNames: [],
    describeBlock: (name) => {
      const rule = w.rules.get(name);
      return rule && rule.action === 'block' ? { action: 'block', vendor: null, sources: rule.lists, reason: rule.reason } : null;
    },
  });
  const store = QueryLogStore.open({ path: join(dir, QUERYLOG_FILE), retentionMs: 30 * 86_400_000, maxBytes: 64 * 1024 ** 3, catalog });
  const answers = new Map<string, Answer>();
  const answerFor = (name: string, outcome: Outcome): Answer => {
    const rule = w.rules.get(name);
    const key = `${rule?.reason ?? ''}|${outcome}`;
    let a = answers.get(key);
    if (a) return a;
    if (rule?.action === 'block') a = { wire: Buffer.alloc(0), outcome: 'blocked', reason: rule.reason, rcode: 0, vendor: null };
    else {
      const upstream = outcome === 'forwarded' ? 'https://1.1.1.1/dns-query' : undefined;
      a = { wire: Buffer.alloc(0), outcome, reason: upstream ? `upstream ${upstream}` : outcome === 'cached' ? 'cache' : 'stale answer: timeout', rcode: 0, upstream };
      if (rule) a.allowedBy = { reason: rule.reason, sources: rule.lists };
    }
    answers.set(key, a);
    return a;
  };
  const pick = (): [string, string] => {
    const c = Math.floor(r() * r() * CLIENTS);
    const u = r();
    const own = w.clientNames[c];
    if (u < 0.15 && own.length > 0) return [own[Math.floor(r() * r() * own.length)], w.clients[c]];
    if (u < 0.3) return [w.trackers[trackerRank()], w.clients[c]];
    return [w.web[webRank()], w.clients[c]];
  };
  const start = Date.now() - DAYS * 86_400_000;
  const span = DAYS * 86_400_000;
  const writeMs: number[] = [];
  let cpuUs = 0;
  let written = 0;
  while (written < opts.rows) {
    const n = Math.min(BATCH, opts.rows - written);
    for (let k = 0; k < n; k++) {
      const [name, client] = pick();
      const u = r();
      const outcome: Outcome = u < 0.7 ? 'cached' : u < 0.99 ? 'forwarded' : 'stale';
      recorder.record(fakeQuery(name, client, r() < 0.3 ? 28 : 1), answerFor(name, outcome), r() * 20);
    }
    const batch = recorder.cut();
    for (let k = 0; k < batch.n; k++) batch.time[k] = start + ((written + k) / opts.rows) * span;
    const cpu0 = process.cpuUsage();
    const res = store.write(batch);
    const cpu = process.cpuUsage(cpu0);
    cpuUs += cpu.user + cpu.system;
    writeMs.push(res.ms);
    written += n;
    if ((written / BATCH) % 20 === 0) process.stderr.write(`\r  written ${fmt(written, 0)} / ${fmt(opts.rows, 0)} rows`);
  }
  process.stderr.write('\n');

  // The same reads the API makes, straight on the store (what the writer thread runs).
  const now = Date.now();
  const day = { since: now - 86_400_000, until: now };
  const week = { since: now - 7 * 86_400_000, until: now };
  const direct: Generated['direct'] = {};
  for (const [name, fn] of [
    ['summary, 24 h', () => store.summary({ ...day, topVendors: 8 })],
    ['summary, 7 d', () => store.summary({ ...week, topVendors: 8 })],
    ['devices, 24 h', () => store.devices(day)],
    ['devices, 7 d', () => store.devices(week)],
    ['top blocked, 24 h', () => store.top({ ...day, kind: 'blocked', limit: 20 })],
    ['top blocked, 7 d', () => store.top({ ...week, kind: 'blocked', limit: 20 })],
    ['top queried, 7 d', () => store.top({ ...week, kind: 'queried', limit: 20 })],
    ['top lists, 7 d', () => store.top({ ...week, kind: 'lists', limit: 20 })],
    ['list hits, 7 d', () => store.listHits(week)],
    ['querylog newest 100', () => store.page({ ...week, limit: 100, cursor: null })],
    ['querylog blocked, 100', () => store.page({ ...week, limit: 100, cursor: null, outcomes: [2] })],
    ['querylog one client, 100', () => store.page({ ...week, limit: 100, cursor: null, client: w.clients[5] })],
    ['querylog name substring', () => store.page({ ...week, limit: 100, cursor: null, name: w.web[40].slice(4, 12) })],
  ] as [string, () => unknown][]) {
    const xs: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t = performance.now();
      fn();
      xs.push(performance.now() - t);
    }
    direct[name] = { p50: pct(xs, 50), max: Math.max(...xs) };
  }
  store.close();
  const file = join(dir, QUERYLOG_FILE);
  const db = new Database(file, { readonly: true });
  const distinctNames = db.prepare('SELECT count(DISTINCT name) FROM q').pluck().get() as number;
  const hours = db.prepare('SELECT count(DISTINCT hour) FROM h_name').pluck().get() as number;
  const nameHours = db.prepare('SELECT count(*) FROM h_name').pluck().get() as number;
  db.close();
  const totalMs = writeMs.reduce((a, b) => a + b, 0);
  const result: Generated = {
    rows: written,
    rowsPerS: written / (totalMs / 1000),
    cpuUsPerRow: cpuUs / written,
    batchMsP50: pct(writeMs, 50),
    batchMsMax: Math.max(...writeMs),
    fileBytes: statSync(file).size,
    distinctNames,
    distinctPerHour: nameHours / Math.max(1, hours),
    direct,
  };
  writeFileSync(join(dir, GENERATE_RESULT), JSON.stringify(result));
}

// ---- phase 2: the API of `hushdns serve` on that log --------------------------------------------------

async function waitFor(child: ChildProcess, re: RegExp, ms: number): Promise<RegExpExecArray> {
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms: ${err.slice(-1000)}`)), ms);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.length > 200_000) err = err.slice(-100_000);
      const m = re.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}: ${err.slice(-1000)}`));
    });
  });
}

async function startServe(dir: string, upstreamPort: number, extra: string[]): Promise<{ child: ChildProcess; dns: number; http: number }> {
  const child = spawn(
    process.execPath,
    [join(PACKAGE_ROOT, 'dist', 'cli.js'), 'serve', '--data-dir', dir, '--dns-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--upstream', `udp://127.0.0.1:${upstreamPort}`, '--refresh-interval', '0', '--rate-limit', '0', '--log-level', 'info', ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HUSHDNS_CONFIG: '' } },
  );
  const m = await waitFor(child, /"msg":"hushdns is answering".*?"dns":\["127\.0\.0\.1:(\d+)"\],"http":"127\.0\.0\.1:(\d+)"/, 120_000);
  return { child, dns: Number(m[1]), http: Number(m[2]) };
}

async function stopServe(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function getJson(port: number, path: string): Promise<{ ms: number; body: Record<string, unknown> }> {
  const t = performance.now();
  const res = await request(`http://127.0.0.1:${port}${path}`);
  const body = (await res.body.json()) as Record<string, unknown>;
  const ms = performance.now() - t;
  if (res.statusCode !== 200) throw new Error(`${path}: HTTP ${res.statusCode} ${JSON.stringify(body)}`);
  return { ms, body };
}

interface ApiTiming {
  path: string;
  p50: number;
  p95: number;
  max: number;
}

const API_PATHS: [string, string][] = [
  ['summary, 24 h', '/api/summary'],
  ['summary, 7 d', '/api/summary?since=7d'],
  ['devices, 24 h', '/api/devices'],
  ['devices, 7 d', '/api/devices?since=7d'],
  ['top blocked, 24 h', '/api/top?kind=blocked'],
  ['top blocked, 7 d', '/api/top?kind=blocked&since=7d'],
  ['top queried, 7 d', '/api/top?kind=queried&since=7d'],
  ['top lists, 7 d', '/api/top?kind=lists&since=7d'],
  ['lists with hits, 24 h', '/api/lists'],
  ['querylog newest 100', '/api/querylog?limit=100'],
  ['querylog blocked 100', '/api/querylog?outcome=blocked&limit=100'],
];

async function apiOnBigLog(dir: string, upstreamPort: number, logRows: number): Promise<Map<string, ApiTiming>> {
  const t0 = performance.now();
  const { child, http } = await startServe(dir, upstreamPort, ['--querylog-retention', '30d', '--querylog-max-size', '64GiB']);
  const startS = (performance.now() - t0) / 1000;
  const out = new Map<string, ApiTiming>();
  try {
    // The first read waits for the writer thread to open the log (it counts the rows once).
    const first = await getJson(http, '/api/summary');
    const rows: Row[] = [];
    for (const [label, path] of API_PATHS) {
      const xs: number[] = [];
      for (let i = 0; i < HTTP_RUNS; i++) xs.push((await getJson(http, path)).ms);
      const t = { path, p50: pct(xs, 50), p95: pct(xs, 95), max: Math.max(...xs) };
      out.set(label, t);
      rows.push({ read: label, 'GET (HTTP, end to end)': path, 'p50 ms': fmt(t.p50, 1), 'p95 ms': fmt(t.p95, 1), 'max ms': fmt(t.max, 1), 'p95 < 50 ms': t.p95 < 50 ? 'yes' : 'no' });
    }
    table(`API of \`hushdns serve\` (writer thread) on the ${fmt(logRows / 1e6, 1)}M-row log, ${HTTP_RUNS} requests each (server start ${fmt(startS, 1)} s; first summary ${fmt(first.ms, 0)} ms, ${fmt(Number(first.body.total), 0)} queries in 24 h)`, rows);
  } finally {
    await stopServe(child);
  }
  return out;
}

// ---- phase 3: the server at full rate ------------------------------------------------------------

/** Bytes the server process sent to the storage layer (not socket or pipe writes). */
function procIo(pid: number): { writeBytes: number } {
  const text = readFileSync(`/proc/${pid}/io`, 'utf8');
  return { writeBytes: Number(/^write_bytes: (\d+)$/m.exec(text)?.[1] ?? 0) };
}

/** A closed-loop UDP load from this process when dnsperf is not installed. */
async function nodeLoad(port: number, names: string[], seconds: number): Promise<{ sent: number; answered: number }> {
  const sock = createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const packets = names.map((n, i) => {
    const labels = n.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
    const h = Buffer.alloc(12);
    h.writeUInt16BE(i & 0xffff, 0);
    h[2] = 1;
    h.writeUInt16BE(1, 4);
    return Buffer.concat([h, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
  });
  let sent = 0;
  let answered = 0;
  let inflight = 0;
  const end = Date.now() + seconds * 1000;
  const pump = () => {
    while (inflight < 256 && Date.now() < end) {
      sock.send(packets[sent++ % packets.length], port, '127.0.0.1');
      inflight++;
    }
  };
  sock.on('message', () => {
    answered++;
    inflight--;
    pump();
  });
  const timer = setInterval(() => {
    inflight = Math.min(inflight, 128); // lost packets would stall a closed loop
    pump();
  }, 50);
  pump();
  await new Promise((r) => setTimeout(r, seconds * 1000 + 200));
  clearInterval(timer);
  sock.close();
  return { sent, answered };
}

interface RateResult {
  mode: 'disk' | 'memory' | 'off';
  flushS: number;
  queue: number;
  qps: number;
  logged: number;
  dropped: number;
  batches: number;
  perInterval: number;
  maxBatchMs: number;
  kibPerInterval: number;
}

/** The server at full rate with the log on: drops, batches and disk writes per interval. */
async function sustained(upstreamPort: number, opts: Options, flushS: number, mode: 'disk' | 'memory' | 'off'): Promise<RateResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hushdns-bench-ql-rate-'));
  await compileTable(dir);
  const { child, dns, http } = await startServe(dir, upstreamPort, ['--querylog-flush-interval', `${flushS}s`, '--querylog', mode]);
  try {
    const names: string[] = [];
    for (let i = 0; i < 5000; i++) names.push(i % 5 === 0 ? `ads${i % 50}.blocked.example` : `host${i}.example.org`);
    // Warm the cache so the run measures the server, not the stub upstream.
    await nodeLoad(dns, names, 1);
    await new Promise((r) => setTimeout(r, flushS * 1000 + 300));
    const before = (await getJson(http, '/api/health')).body.querylog as Record<string, number>;
    const io0 = procIo(child.pid!);
    const t0 = performance.now();
    let answered: number;
    if (spawnSync('which', ['dnsperf']).status === 0) {
      const file = join(dir, 'queries.txt');
      writeFileSync(file, names.map((n) => `${n} A`).join('\n'));
      // Asynchronously: the stub upstream lives in this process and must keep answering.
      const perf = spawn('dnsperf', ['-s', '127.0.0.1', '-p', String(dns), '-d', file, '-l', String(opts.durationS), '-c', '4', '-q', '400', '-t', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      perf.stdout.on('data', (d: Buffer) => (out += d.toString()));
      perf.stderr.resume();
      await new Promise((r) => perf.once('exit', r));
      answered = Number(/Queries completed:\s+(\d+)/.exec(out)?.[1] ?? 0);
      if (process.env.BENCH_DEBUG) process.stderr.write(out);
    } else {
      answered = (await nodeLoad(dns, names, opts.durationS)).answered;
    }
    const seconds = (performance.now() - t0) / 1000;
    // Let the last batch land, then read what the log did.
    await new Promise((r) => setTimeout(r, flushS * 1000 + 500));
    const after = (await getJson(http, '/api/health')).body.querylog as Record<string, number>;
    const io1 = procIo(child.pid!);
    const intervals = (seconds + flushS + 0.5) / flushS;
    const batches = after.flushes - before.flushes;
    return {
      mode,
      flushS,
      queue: after.capacity,
      qps: answered / seconds,
      logged: after.rowsWritten - before.rowsWritten,
      dropped: after.dropped - before.dropped,
      batches,
      perInterval: batches / intervals,
      maxBatchMs: after.maxFlushMs,
      kibPerInterval: (io1.writeBytes - io0.writeBytes) / 1024 / intervals,
    };
  } finally {
    await stopServe(child);
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** The server only needs a table; a one-rule list compiles in milliseconds (the bundled lists take seconds). */
async function compileTable(dir: string): Promise<void> {
  const list = join(dir, 'blocked.txt');
  writeFileSync(list, '||blocked.example^\n');
  await compile({ dataDir: dir, sources: [fromArgument(`${list}#adblock`, 'cli', [])], level: 'standard', exclude: [], allow: [], deny: [], fetch: { timeoutMs: 2000, maxBytes: 1 << 20, concurrency: 1 }, compilerVersion: 'bench' });
}

// ---- the buffer: sizing and memory -----------------------------------------------------------------

/** Memory a full buffer takes, measured: the recorder's typed arrays holding one 5 s interval at the design rate. */
async function measureQueueMemory(): Promise<{ rows: number; bytesPerRow: number; exact: boolean }> {
  const gcOnce = (globalThis as { gc?: () => void }).gc;
  // The arrays the buffer outgrew are freed by a full collection; twice, with a turn between, so
  // their backing stores are really gone.
  const gc = async () => {
    for (let i = 0; i < 2; i++) {
      gcOnce?.();
      await new Promise((r) => setImmediate(r));
    }
  };
  const rows = queueRows(DEFAULT_QUEUE, DEFAULT_FLUSH_S * 1000);
  await gc();
  const before = process.memoryUsage().arrayBuffers;
  const rec = new Recorder({ capacity: rows, anonymise: 'off', excludeClients: [], excludeNames: [] });
  const a: Answer = { wire: Buffer.alloc(0), outcome: 'cached', reason: 'cache', rcode: 0 };
  const queries = Array.from({ length: 1000 }, (_, i) => fakeQuery(`n${i}.example.org`, `192.168.1.${i % 40}`, 1));
  for (let i = 0; i < rows; i++) rec.record(queries[i % 1000], a, 1);
  await gc();
  const held = process.memoryUsage().arrayBuffers - before;
  if (rec.length !== rows) throw new Error(`the buffer held ${rec.length} of ${rows} rows`);
  return { rows, bytesPerRow: held / rows, exact: gcOnce !== undefined };
}

function sizingTable(measured: { rows: number; bytesPerRow: number; exact: boolean }): void {
  const rows: Row[] = [1, 5, 30, 300].map((s) => {
    const q = queueRows(DEFAULT_QUEUE, s * 1000);
    return {
      'flush interval': `${s} s`,
      'queue (rows)': fmt(q, 0),
      'buffer when full': `${fmt((q * BYTES_PER_ROW) / 1024 ** 2, 1)} MiB`,
      'one batch per interval up to': `${fmt(Math.min(DESIGN_RATE, q / s), 0)} q/s`,
      'early write above': `${fmt((q * 0.75) / s, 0)} q/s`,
    };
  });
  table(
    `Query-log buffer, sized from the flush interval (querylog-queue auto, the default: design rate ${fmt(DESIGN_RATE, 0)} q/s × 1.5, at most 1M rows). Measured: ${fmt(measured.bytesPerRow, 1)} bytes per buffered row (${fmt(measured.rows, 0)} rows in typed arrays${measured.exact ? '' : '; without --expose-gc arrays the buffer outgrew may still be counted'}; the batch in flight to the writer thread is a copy of the same size)`,
    rows,
  );
}

// ---- main ------------------------------------------------------------------------------------------

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const opts = parseArgs(argv);
  const catalog = VendorCatalog.load();
  if (opts.generateInto) {
    generate(opts.generateInto, opts, catalog);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'hushdns-bench-ql-'));
  const stub = await startStub();
  const machine = describeMachine(['dnsperf']);
  process.stdout.write(`# hushdns query-log benchmark\n\n${formatMachine(machine)} Load average before: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}.\n`);
  if (!hasCorpus()) process.stdout.write(`\nNo corpus at ${CORPUS_DIR}: generated names instead of the top-sites list.\n`);
  const results: Record<string, unknown> = { machine };
  try {
    const memory = await measureQueueMemory();
    sizingTable(memory);
    results.queueMemory = memory;
    let gen: Generated | null = null;
    let api: Map<string, ApiTiming> | null = null;
    if (!opts.rateOnly) {
      await compileTable(dir);
      // Filling the log builds a large heap; doing it in a child keeps this process's GC out of the HTTP timings.
      const child = spawn(process.execPath, [process.argv[1], '--generate-into', dir, '--rows', String(opts.rows)], { stdio: ['ignore', 'inherit', 'inherit'] });
      const code = await new Promise((r) => child.once('exit', r));
      if (code !== 0) throw new Error(`filling the log failed (exit ${code})`);
      gen = JSON.parse(readFileSync(join(dir, GENERATE_RESULT), 'utf8')) as Generated;
      table(`Writer: ${fmt(gen.rows / 1e6, 1)}M rows over ${DAYS} days in ${fmt(BATCH, 0)}-row batches (Recorder → Batch → store.write, one transaction each); ${fmt(gen.distinctNames, 0)} distinct names, ${fmt(gen.distinctPerHour, 0)} a hour on average`, [
        {
          'rows/s written': fmt(gen.rowsPerS, 0),
          'writer CPU µs/row': fmt(gen.cpuUsPerRow, 2),
          'batch ms p50': fmt(gen.batchMsP50, 0),
          'batch ms max': fmt(gen.batchMsMax, 0),
          'file MiB': fmt(gen.fileBytes / 1024 ** 2, 0),
          'bytes/row': fmt(gen.fileBytes / gen.rows, 1),
        },
      ]);
      table(
        'Store reads, no HTTP (what the writer thread runs for each call), 15 runs each',
        Object.entries(gen.direct).map(([read, t]) => ({ read, 'p50 ms': fmt(t.p50, 2), 'max ms': fmt(t.max, 2) })),
      );
      api = await apiOnBigLog(dir, stub.port, opts.rows);
      results.generate = gen;
      results.api = Object.fromEntries(api);
    }
    const rate: RateResult[] = [];
    for (const [flushS, mode] of [
      [5, 'off'],
      [5, 'disk'],
      [5, 'memory'],
      [1, 'disk'],
    ] as [number, 'disk' | 'memory' | 'off'][]) {
      rate.push(await sustained(stub.port, opts, flushS, mode));
    }
    results.rate = rate;
    table(
      `Full-rate load for ${opts.durationS} s (dnsperf, or a Node UDP client, on the same machine; default querylog-queue)`,
      rate.map((x) => {
        const off = x.mode === 'off';
        return {
          'query log': x.mode,
          'flush interval': off ? '–' : `${x.flushS} s`,
          queue: off ? '–' : fmt(x.queue, 0),
          'answered q/s': fmt(x.qps, 0),
          'rows logged': off ? '–' : fmt(x.logged, 0),
          dropped: off ? '–' : fmt(x.dropped, 0),
          batches: off ? '–' : x.batches,
          'batches / interval': off ? '–' : fmt(x.perInterval, 2),
          'max batch ms (writer thread)': off ? '–' : fmt(x.maxBatchMs, 0),
          'KiB to disk / interval': fmt(x.kibPerInterval, 0),
        };
      }),
    );
    const disk5 = rate.find((x) => x.mode === 'disk' && x.flushS === DEFAULT_FLUSH_S)!;
    const t = (label: string) => {
      const x = api?.get(label);
      return x ? `${fmt(x.p50, 1)} / ${fmt(x.p95, 1)}` : '–';
    };
    table('Summary (API: p50 / p95 ms over HTTP; full rate: default settings, log on disk, 5 s interval)', [
      {
        rows: gen ? fmt(gen.rows, 0) : '–',
        'rows/s written': gen ? fmt(gen.rowsPerS, 0) : '–',
        'batch ms (50k rows)': gen ? fmt(gen.batchMsP50, 0) : '–',
        'file MiB': gen ? fmt(gen.fileBytes / 1024 ** 2, 0) : '–',
        'summary 24 h': t('summary, 24 h'),
        'summary 7 d': t('summary, 7 d'),
        'devices 24 h': t('devices, 24 h'),
        'devices 7 d': t('devices, 7 d'),
        'top blocked 24 h': t('top blocked, 24 h'),
        'top blocked 7 d': t('top blocked, 7 d'),
        'full rate q/s': fmt(disk5.qps, 0),
        'drops at full rate': fmt(disk5.dropped, 0),
        'batches / interval': fmt(disk5.perInterval, 2),
      },
    ]);
    const resultsDir = join(PACKAGE_ROOT, 'bench-results');
    mkdirSync(resultsDir, { recursive: true });
    const out = join(resultsDir, `querylog-${machine.date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(`\nJSON: ${out}\n`);
  } finally {
    stub.socket.close();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench/querylog: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
