// Query-log benchmark (issue 5): 10 million logged queries written through the writer's own batch
// path, then /api/summary and /api/devices timed end to end over HTTP against `hushdns serve`
// reading that log; then the server loaded at its full rate (dnsperf, or a Node UDP client when
// dnsperf is missing) to see whether the log keeps up without drops, and how often and how much
// it writes per flush interval (/proc/PID/io of the server).
//
//   npx tsc -p tsconfig.json && node dist/bench/querylog.js [--rows N] [--duration S] [--keep]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { request } from 'undici';
import { PACKAGE_ROOT } from '../common/paths.js';
import { VendorCatalog } from '../common/vendors.js';
import { compile } from '../compiler/compile.js';
import { fromArgument } from '../compiler/sources.js';
import type { Answer, Outcome, Query } from '../server/pipeline/types.js';
import { QUERYLOG_FILE } from '../server/querylog/querylog.js';
import { Recorder } from '../server/querylog/recorder.js';
import { HOUR_MS, QueryLogStore } from '../server/querylog/store.js';
import type { ParsedQuery } from '../server/wire/query.js';
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

const BATCH = 50_000;
const DAYS = 7;
const CLIENTS = 40;
const GENERIC_NAMES = 20_000;
const LISTS = ['hagezi-light', 'stevenblack', 'oisd-small', 'easyprivacy', 'hagezi-native-xiaomi'];

function parseArgs(argv: string[]): Options {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return { rows: Number(get('--rows') ?? 10_000_000), durationS: Number(get('--duration') ?? 10), keep: argv.includes('--keep'), rateOnly: argv.includes('--rate-only'), generateInto: get('--generate-into') ?? null };
}

/** Deterministic, fast, good low bits (mulberry32). */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x6d2b79f5) >>> 0;
    let t = x;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Workload {
  generic: string[];
  /** Per client: the names under the vendors it talks to. */
  clientNames: string[][];
  clients: string[];
  /** Name → blocking rule. */
  rules: Map<string, string>;
}

/**
 * A household: 40 devices, each talking to the web at large (20 000 names, a few very popular)
 * and to 2–5 vendors of the catalog (a phone's maker, Google, an SDK or two); a tenth of the web's
 * names and most vendor telemetry names are blocked by one of a few thousand rules.
 */
function workload(catalog: VendorCatalog): Workload {
  const r = rng(42);
  const rules = new Map<string, string>();
  const generic: string[] = [];
  for (let i = 0; i < GENERIC_NAMES; i++) {
    const name = `host${i}.site${i % 4000}.example`;
    generic.push(name);
    if (i % 10 === 3) rules.set(name, `||site${i % 4000}.example^`);
  }
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
          if (j % 3 !== 0) rules.set(name, `||${suffix}^`);
        }
      }
    }
    clientNames.push(names);
  }
  const clients = Array.from({ length: CLIENTS }, (_, i) => `192.168.1.${10 + i}`);
  return { generic, clientNames, clients, rules };
}

function fakeQuery(name: string, client: string, qtype: number): Query {
  const q: ParsedQuery = { id: 1, flags: 0x0100, opcode: 0, rd: true, cd: false, ad: false, name, qtype, qclass: 1, questionEnd: 0, edns: null };
  return { msg: Buffer.alloc(0), q, client: { address: client, port: 40000, family: 4 }, protocol: 'udp', receivedAt: 0 };
}

interface Row {
  [k: string]: string | number;
}

function table(title: string, rows: Row[]): void {
  const cols = Object.keys(rows[0] ?? {});
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(width[i])).join(' | ')} |`;
  process.stdout.write(`\n${title}\n${line(cols)}\n|${width.map((w) => '-'.repeat(w + 2)).join('|')}|\n${rows.map((r) => line(cols.map((c) => String(r[c])))).join('\n')}\n`);
}

const fmt = (n: number, digits = 1) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

/** Phase 1: the log filled through Recorder → Batch → QueryLogStore.write, as the writer thread does it. */
function generate(dir: string, opts: Options, catalog: VendorCatalog): Row[] {
  const w = workload(catalog);
  const r = rng(7);
  const listsOf = (rule: string) => {
    let h = 0;
    for (let i = 0; i < rule.length; i++) h = (h * 31 + rule.charCodeAt(i)) >>> 0;
    return [LISTS[h % LISTS.length], ...(h % 3 === 0 ? [LISTS[(h + 1) % LISTS.length]] : [])];
  };
  const recorder = new Recorder({
    capacity: BATCH,
    anonymise: 'off',
    excludeClients: [],
    excludeNames: [],
    describeBlock: (name) => {
      const rule = w.rules.get(name);
      if (!rule) return null;
      const lists = listsOf(rule);
      return { action: 'block', vendor: null, sources: lists, reason: `${rule} (${lists.join(', ')})` };
    },
  });
  const store = QueryLogStore.open({ path: join(dir, QUERYLOG_FILE), retentionMs: 30 * 86_400_000, maxBytes: 64 * 1024 ** 3, catalog });
  const answers = new Map<string, Answer>();
  const answerFor = (name: string, outcome: Outcome): Answer => {
    const rule = w.rules.get(name);
    const key = rule ?? outcome;
    let a = answers.get(key);
    if (a) return a;
    if (rule) {
      const lists = listsOf(rule);
      a = { wire: Buffer.alloc(0), outcome: 'blocked', reason: `${rule} (${lists.join(', ')})`, rcode: 0, vendor: null };
    } else if (outcome === 'forwarded') a = { wire: Buffer.alloc(0), outcome, reason: 'upstream https://1.1.1.1/dns-query', rcode: 0, upstream: 'https://1.1.1.1/dns-query' };
    else a = { wire: Buffer.alloc(0), outcome, reason: outcome, rcode: 0 };
    answers.set(key, a);
    return a;
  };
  const pick = (): [string, string] => {
    const c = Math.floor(r() * r() * CLIENTS);
    const own = w.clientNames[c];
    if (own.length > 0 && r() < 0.3) return [own[Math.floor(r() * r() * own.length)], w.clients[c]];
    const u = r();
    return [w.generic[Math.floor(u * u * u * GENERIC_NAMES)], w.clients[c]];
  };
  const start = Date.now() - DAYS * 86_400_000;
  const span = DAYS * 86_400_000;
  const writeMs: number[] = [];
  let written = 0;
  const t0 = performance.now();
  while (written < opts.rows) {
    const n = Math.min(BATCH, opts.rows - written);
    for (let k = 0; k < n; k++) {
      const [name, client] = pick();
      const outcome: Outcome = r() < 0.7 ? 'cached' : 'forwarded';
      recorder.record(fakeQuery(name, client, r() < 0.3 ? 28 : 1), answerFor(name, outcome), r() * 20);
    }
    const batch = recorder.cut();
    for (let k = 0; k < batch.n; k++) batch.time[k] = start + ((written + k) / opts.rows) * span;
    const res = store.write(batch);
    writeMs.push(res.ms);
    written += n;
    if ((written / BATCH) % 20 === 0) process.stderr.write(`\r  written ${fmt(written, 0)} / ${fmt(opts.rows, 0)} rows`);
  }
  const genS = (performance.now() - t0) / 1000;
  process.stderr.write('\n');

  // The same reads the API makes, straight on the store (what the writer thread runs).
  const now = Date.now();
  const day = { since: now - 86_400_000, until: now };
  const week = { since: now - 7 * 86_400_000, until: now };
  const timeIt = (fn: () => unknown, runs = 15) => {
    const xs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      fn();
      xs.push(performance.now() - t);
    }
    return xs;
  };
  const direct: Row[] = [];
  for (const [name, fn] of [
    ['summary, 24 h', () => store.summary({ ...day, topVendors: 8 })],
    ['devices, 24 h', () => store.devices(day)],
    ['summary, 7 d', () => store.summary({ ...week, topVendors: 8 })],
    ['devices, 7 d', () => store.devices(week)],
    ['top blocked, 24 h', () => store.top({ ...day, kind: 'blocked', limit: 20 })],
    ['top blocked, 7 d', () => store.top({ ...week, kind: 'blocked', limit: 20 })],
    ['querylog newest 100', () => store.page({ ...week, limit: 100, cursor: null })],
    ['querylog blocked, 100', () => store.page({ ...week, limit: 100, cursor: null, outcomes: [2] })],
    ['querylog one client, 100', () => store.page({ ...week, limit: 100, cursor: null, client: w.clients[5] })],
    ['querylog name substring', () => store.page({ ...week, limit: 100, cursor: null, name: 'site3999.' })],
  ] as [string, () => unknown][]) {
    const xs = timeIt(fn);
    direct.push({ read: name, 'p50 ms': fmt(pct(xs, 50), 2), 'max ms': fmt(Math.max(...xs), 2) });
  }
  const size = store.size({});
  store.close();
  const file = statSync(join(dir, QUERYLOG_FILE)).size;
  table(`Writer: ${fmt(written / 1e6, 1)}M rows through the batch path (Recorder → Batch → store.write, one transaction per batch)`, [
    {
      rows: fmt(written, 0),
      'batch rows': fmt(BATCH, 0),
      seconds: fmt(genS, 1),
      'rows/s (incl. making them)': fmt(written / genS, 0),
      'write ms / batch p50': fmt(pct(writeMs, 50), 0),
      'write ms / batch max': fmt(Math.max(...writeMs), 0),
      'rows/s written (p50 batch)': fmt(BATCH / (pct(writeMs, 50) / 1000), 0),
      'file MiB': fmt(file / 1024 ** 2, 0),
      'bytes/row': fmt(file / written, 1),
      'rows counted': fmt(size.rows, 0),
    },
  ]);
  table(`Store reads on ${fmt(written / 1e6, 1)}M rows (what the writer thread runs for each API call, no HTTP)`, direct);
  return direct;
}

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

/** Phase 2: `hushdns serve` (writer thread) on the 10M-row log: the API end to end. */
async function apiOnBigLog(dir: string, upstreamPort: number, logRows: number): Promise<void> {
  const t0 = performance.now();
  const { child, http } = await startServe(dir, upstreamPort, ['--querylog-retention', '30d', '--querylog-max-size', '64GiB']);
  const startS = (performance.now() - t0) / 1000;
  try {
    // The first read waits for the writer thread to open the log (it counts the rows once).
    const first = await getJson(http, '/api/summary');
    const rows: Row[] = [];
    for (const path of ['/api/summary', '/api/devices', '/api/summary?since=7d', '/api/devices?since=7d', '/api/top?kind=blocked', '/api/top?kind=lists&since=7d', '/api/querylog?limit=100', '/api/querylog?outcome=blocked&limit=100']) {
      const xs: number[] = [];
      for (let i = 0; i < 20; i++) xs.push((await getJson(http, path)).ms);
      rows.push({ 'GET (HTTP, end to end)': path, 'p50 ms': fmt(pct(xs, 50), 1), 'p95 ms': fmt(pct(xs, 95), 1), 'max ms': fmt(Math.max(...xs), 1), 'p95 under 50 ms': pct(xs, 95) < 50 ? 'yes' : 'no' });
    }
    table(`API of \`hushdns serve\` on the ${fmt(logRows / 1e6, 1)}M-row log (server start ${fmt(startS, 1)} s; first summary ${fmt(first.ms, 0)} ms, total ${fmt(Number(first.body.total), 0)} queries in 24 h)`, rows);
  } finally {
    await stopServe(child);
  }
}

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

/** Phase 3: the server at full rate with the log on: drops, batches and disk writes per interval. */
async function sustained(upstreamPort: number, opts: Options, flushS: number, mode: 'disk' | 'memory' | 'off'): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'hushdns-bench-ql-rate-'));
  await compileTable(dir);
  const extra = ['--querylog-flush-interval', `${flushS}s`, '--querylog', mode];
  const { child, dns, http } = await startServe(dir, upstreamPort, extra);
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
    const flushes = after.flushes - before.flushes;
    const intervals = (seconds + flushS + 0.5) / flushS;
    const off = mode === 'off';
    return {
      'query log': mode,
      'flush interval': off ? '–' : `${flushS} s`,
      queue: off ? '–' : fmt(after.capacity, 0),
      'answered q/s': fmt(answered / seconds, 0),
      'rows logged': off ? '–' : fmt(after.rowsWritten - before.rowsWritten, 0),
      'dropped': off ? '–' : fmt(after.dropped - before.dropped, 0),
      'batches': off ? '–' : flushes,
      'batches / interval': off ? '–' : fmt(flushes / intervals, 2),
      'max batch ms (writer thread)': off ? '–' : fmt(after.maxFlushMs, 0),
      'KiB to disk / interval': fmt((io1.writeBytes - io0.writeBytes) / 1024 / intervals, 0),
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

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const opts = parseArgs(argv);
  const catalog = VendorCatalog.load();
  if (opts.generateInto) {
    generate(opts.generateInto, opts, catalog);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'hushdns-bench-ql-'));
  const stub = await startStub();
  process.stdout.write(`hushdns query-log benchmark: ${fmt(opts.rows, 0)} rows, ${HOUR_MS / 3_600_000} h roll-ups, data in ${dir}\n`);
  try {
    if (!opts.rateOnly) {
      await compileTable(dir);
      // Filling the log builds a large heap; doing it in a child keeps this process's GC out of the HTTP timings.
      const child = spawn(process.execPath, [process.argv[1], '--generate-into', dir, '--rows', String(opts.rows)], { stdio: ['ignore', 'inherit', 'inherit'] });
      const code = await new Promise((r) => child.once('exit', r));
      if (code !== 0) throw new Error(`filling the log failed (exit ${code})`);
      await apiOnBigLog(dir, stub.port, opts.rows);
    }
    const rate: Row[] = [];
    for (const [flushS, mode] of [
      [5, 'off'],
      [5, 'disk'],
      [5, 'memory'],
      [1, 'disk'],
    ] as [number, 'disk' | 'memory' | 'off'][]) {
      rate.push(await sustained(stub.port, opts, flushS, mode));
    }
    table(`Full-rate load for ${opts.durationS} s (dnsperf or Node UDP client on the same machine), query log on disk`, rate);
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
