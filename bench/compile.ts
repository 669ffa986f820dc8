// `npm run bench:compile`: how long `hushdns compile` takes and how much memory it peaks at for
// (a) every list in ../shared/corpus together, (b) a generated 1M-name hosts list, (c) 5M names;
// and, in the same run, @adguard/hostlist-compiler (Deduplicate, Compress, Validate) on the same
// 1M input. Prints a markdown table with the targets of issue 2 and writes JSON to bench-results/.
//
//   node dist/bench/compile.js [--quick] [--sizes corpus,1m,5m] [--no-peer] [--timeout 900]
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT } from '../common/paths.js';
import { CORPUS_DIR, corpusBlocklists, hasCorpus } from './lib/corpus.js';
import { describeMachine, formatMachine, type Machine } from './lib/machine.js';
import { parseSize, sizeLabel, writeGeneratedList, type GeneratedList } from './lib/names.js';
import { haveCommand, runMeasured, startProcess, stopAll, stopAllOnSignals } from './lib/proc.js';
import { atMost, fmtNumber, markdownTable, mib, type Verdict } from './lib/summary.js';

export interface CompileBenchOptions {
  /** 'corpus' and/or generated sizes (names). */
  cases: ('corpus' | number)[];
  /** Compare with @adguard/hostlist-compiler on this generated size (null: skip). */
  peerSize: number | null;
  timeoutMs: number;
  workDir: string;
  peersDir: string;
  resultsDir: string | null;
  log: (line: string) => void;
}

export interface CompileCase {
  name: string;
  tool: 'hushdns' | 'hostlist-compiler';
  input: string;
  inputNames: number | null;
  sources: number;
  status: 'ok' | 'failed' | 'timeout' | 'skipped';
  note?: string;
  wallMs?: number;
  peakMiB?: number;
  peakSource?: string;
  /** hushdns: rules in the table; hostlist-compiler: rules in its output. */
  rules?: number;
  tableMiB?: number;
  compilerMs?: number;
  targets?: { wallS: number; peakMiB: number; wall: Verdict; peak: Verdict };
}

export interface CompileBenchResult {
  machine: Machine & { loadAverage: number[] };
  generated: Omit<GeneratedList, 'written'>[];
  cases: CompileCase[];
}

// Issue 2's targets on 2-core machines.
const TARGETS: Record<number, { wallS: number; peakMiB: number }> = { 1_000_000: { wallS: 5, peakMiB: 250 }, 5_000_000: { wallS: 30, peakMiB: 300 } };

const CLI = join(PACKAGE_ROOT, 'dist', 'cli.js');

async function compileWithHushdns(name: string, sources: string[], inputNames: number | null, opts: CompileBenchOptions): Promise<CompileCase> {
  const dataDir = join(opts.workDir, `compile-${name.replace(/[^a-z0-9]+/gi, '-')}-${process.pid}`);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const args = [CLI, 'compile', '--data-dir', dataDir, '--no-default-sources', '--no-bundled', '--json', '--log-level', 'warn'];
  for (const s of sources) args.push('--source', s);
  const base: CompileCase = { name, tool: 'hushdns', input: sources.length === 1 ? sources[0] : `${sources.length} files`, inputNames, sources: sources.length, status: 'failed' };
  try {
    const r = await runMeasured(process.execPath, args, { timeoutMs: opts.timeoutMs, cwd: opts.workDir, timeFile: join(dataDir, 'time.txt') });
    const done: CompileCase = { ...base, wallMs: r.wallMs, peakMiB: mib(r.peakKiB), peakSource: r.peakSource };
    if (r.timedOut) return { ...done, status: 'timeout', note: `stopped after ${opts.timeoutMs / 1000} s` };
    if (r.code !== 0) return { ...done, status: 'failed', note: `exit ${r.code}: ${r.output.slice(-500).trim()}` };
    const table = join(dataDir, 'blocklist.sqlite');
    let rules: number | undefined;
    let compilerMs: number | undefined;
    try {
      const report = JSON.parse(r.stdout) as { totals?: { rules?: number }; ms?: number };
      rules = report.totals?.rules;
      compilerMs = report.ms;
    } catch {
      // The table is still measured below.
    }
    return { ...done, status: 'ok', rules, compilerMs, tableMiB: existsSync(table) ? statSync(table).size / 1048576 : undefined };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const PEER_PACKAGE = '@adguard/hostlist-compiler';

/** Installs hostlist-compiler into a scratch directory outside the repo; its CLI path, or the reason it is not available. */
export async function ensureHostlistCompiler(peersDir: string, log: (l: string) => void): Promise<{ cli: string } | { skip: string }> {
  const pkgDir = join(peersDir, 'node_modules', ...PEER_PACKAGE.split('/'));
  const pkgJson = join(pkgDir, 'package.json');
  if (!existsSync(pkgJson)) {
    if (!haveCommand('npm')) return { skip: 'npm is not available to install it' };
    log(`installing ${PEER_PACKAGE} into ${peersDir} (scratch, outside the repo)`);
    mkdirSync(peersDir, { recursive: true });
    // A registry may lack the exact version a dependency pins (seen: @adguard/diff-builder@1.1.4);
    // then retry with an override to the same minor line, and say so.
    const overrides: Record<string, string> = {};
    for (let attempt = 0; attempt < 4; attempt++) {
      writeFileSync(join(peersDir, 'package.json'), `${JSON.stringify({ name: 'hushdns-bench-peers', private: true, overrides }, null, 2)}\n`);
      const p = startProcess('npm', ['install', '--prefix', peersDir, '--no-audit', '--no-fund', '--loglevel', 'error', PEER_PACKAGE]);
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 300_000);
      const code = await p.exited;
      clearTimeout(timer);
      if (code === 0 && existsSync(pkgJson)) break;
      const missing = /No matching version found for (@?[^@\s]+)@(\d+)\.(\d+)\.(\d+)/.exec(p.output());
      if (!missing || overrides[missing[1]]) return { skip: `npm install ${PEER_PACKAGE} failed (${code}): ${p.output().trim().split('\n').slice(-3).join(' ')}` };
      overrides[missing[1]] = `~${missing[2]}.${missing[3]}.0`;
      log(`  the registry has no ${missing[1]}@${missing[2]}.${missing[3]}.${missing[4]} (a dependency pins it); retrying with the override ${missing[1]}@${overrides[missing[1]]}`);
    }
    if (!existsSync(pkgJson)) return { skip: `npm install ${PEER_PACKAGE} did not succeed after overrides ${JSON.stringify(overrides)}` };
  }
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { bin?: string | Record<string, string>; version?: string };
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin ? Object.values(pkg.bin)[0] : undefined;
  if (!bin) return { skip: `${PEER_PACKAGE} ${pkg.version ?? ''} has no command-line entry` };
  log(`${PEER_PACKAGE} ${pkg.version ?? '?'} ready`);
  return { cli: join(pkgDir, bin) };
}

async function compileWithHostlistCompiler(list: GeneratedList, opts: CompileBenchOptions): Promise<CompileCase> {
  const name = `${sizeLabel(list.count)} generated hosts`;
  const base: CompileCase = { name, tool: 'hostlist-compiler', input: list.path, inputNames: list.count, sources: 1, status: 'skipped' };
  const peer = await ensureHostlistCompiler(opts.peersDir, opts.log);
  if ('skip' in peer) return { ...base, note: peer.skip };
  const dir = join(opts.workDir, `hostlist-compiler-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'config.json');
  const output = join(dir, 'output.txt');
  writeFileSync(
    config,
    JSON.stringify({ name: 'hushdns benchmark', sources: [{ name: 'generated', source: list.path, type: 'hosts' }], transformations: ['Deduplicate', 'Compress', 'Validate'] }, null, 2),
  );
  try {
    const r = await runMeasured(process.execPath, [peer.cli, '-c', config, '-o', output], { timeoutMs: opts.timeoutMs, cwd: dir, timeFile: join(dir, 'time.txt') });
    const done: CompileCase = { ...base, wallMs: r.wallMs, peakMiB: mib(r.peakKiB), peakSource: r.peakSource };
    if (r.timedOut) return { ...done, status: 'timeout', note: `stopped after ${opts.timeoutMs / 1000} s` };
    if (r.code !== 0) return { ...done, status: 'failed', note: `exit ${r.code}: ${r.output.slice(-500).trim()}` };
    let rules = 0;
    if (existsSync(output)) for (const line of readFileSync(output, 'utf8').split('\n')) if (line.startsWith('||')) rules++;
    return { ...done, status: 'ok', rules };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runCompileBench(opts: CompileBenchOptions): Promise<CompileBenchResult> {
  const machine = { ...describeMachine(), loadAverage: loadavg() };
  const cases: CompileCase[] = [];
  const generated: GeneratedList[] = [];
  if (!existsSync(CLI)) throw new Error(`${CLI} does not exist: run \`npm run build\` first`);
  for (const c of opts.cases) {
    if (c === 'corpus') {
      if (!hasCorpus()) {
        opts.log(`corpus: ${CORPUS_DIR} is absent; skipping the real-lists compile`);
        cases.push({ name: 'corpus (all lists)', tool: 'hushdns', input: CORPUS_DIR, inputNames: null, sources: 0, status: 'skipped', note: `${CORPUS_DIR} is absent` });
        continue;
      }
      const files = corpusBlocklists();
      opts.log(`compiling every corpus list together (${files.length} files, formats from MANIFEST.tsv)`);
      const r = await compileWithHushdns('corpus (all lists)', files.map((f) => `${f.path}#${f.format}`), null, opts);
      cases.push(r);
      opts.log(`  ${describeCase(r)}`);
      continue;
    }
    const list = await writeGeneratedList(opts.workDir, c, 'hosts');
    generated.push(list);
    opts.log(`${sizeLabel(c)} generated hosts list: ${list.path} (${(list.bytes / 1048576).toFixed(1)} MiB, sha256 ${list.sha256.slice(0, 16)}…, ${list.written ? `written in ${(list.ms / 1000).toFixed(1)} s` : 'reused'})`);
    const r = await compileWithHushdns(`${sizeLabel(c)} generated hosts`, [`${list.path}#hosts`], c, opts);
    const t = TARGETS[c];
    if (t && r.status === 'ok') r.targets = { ...t, wall: atMost(r.wallMs! / 1000, t.wallS), peak: atMost(r.peakMiB, t.peakMiB) };
    cases.push(r);
    opts.log(`  ${describeCase(r)}`);
    if (opts.peerSize === c) {
      opts.log(`hostlist-compiler on the same ${sizeLabel(c)} input`);
      const p = await compileWithHostlistCompiler(list, opts);
      cases.push(p);
      opts.log(`  ${describeCase(p)}`);
    }
  }
  const result: CompileBenchResult = { machine, generated: generated.map(({ written: _w, ...g }) => g), cases };
  if (opts.resultsDir) {
    mkdirSync(opts.resultsDir, { recursive: true });
    const file = join(opts.resultsDir, `compile-${machine.date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    opts.log(`results: ${file}`);
  }
  return result;
}

function describeCase(c: CompileCase): string {
  if (c.status !== 'ok') return `${c.tool}: ${c.status}${c.note ? ` (${c.note})` : ''}`;
  return `${c.tool}: ${(c.wallMs! / 1000).toFixed(2)} s wall, ${c.peakMiB!.toFixed(0)} MiB peak RSS${c.rules !== undefined ? `, ${c.rules.toLocaleString('en-US')} rules` : ''}`;
}

export function formatCompileTable(r: CompileBenchResult): string {
  const rows = r.cases.map((c) => {
    const wall = c.wallMs !== undefined ? `${fmtNumber(c.wallMs / 1000, 2)} s` : '—';
    const peak = c.peakMiB !== undefined ? `${fmtNumber(c.peakMiB, 0)} MiB` : '—';
    const target = c.targets ? `≤ ${c.targets.wallS} s, ≤ ${c.targets.peakMiB} MB` : '';
    const met = c.targets ? `wall ${c.targets.wall}, RSS ${c.targets.peak}` : '';
    return [
      c.name,
      c.tool,
      c.status === 'ok' ? 'ok' : `${c.status}${c.note ? `: ${c.note.slice(0, 120)}` : ''}`,
      wall,
      peak,
      c.rules !== undefined ? c.rules.toLocaleString('en-US') : '—',
      c.tableMiB !== undefined ? `${fmtNumber(c.tableMiB, 1)} MiB` : '—',
      target,
      met,
    ];
  });
  return markdownTable(['input', 'tool', 'status', 'wall', 'peak RSS', 'rules', 'table size', 'target', 'met'], rows);
}

interface Args {
  quick: boolean;
  sizes: string | null;
  peer: boolean;
  timeoutS: number;
  workDir: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, sizes: null, peer: true, timeoutS: 900, workDir: join(tmpdir(), 'hushdns-bench') };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--quick') a.quick = true;
    else if (v === '--no-peer') a.peer = false;
    else if (v === '--sizes') a.sizes = argv[++i];
    else if (v === '--timeout') a.timeoutS = Number(argv[++i]);
    else if (v === '--work-dir') a.workDir = argv[++i];
    else if (v === '--help' || v === '-h') {
      process.stdout.write('node dist/bench/compile.js [--quick] [--sizes corpus,1m,5m] [--no-peer] [--timeout SECONDS] [--work-dir DIR]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${v}`);
  }
  return a;
}

async function main(): Promise<void> {
  stopAllOnSignals();
  const a = parseArgs(process.argv.slice(2));
  const sizes = (a.sizes ?? (a.quick ? 'corpus,100k' : 'corpus,1m,5m')).split(',').map((s) => s.trim()).filter(Boolean);
  const cases = sizes.map((s) => (s === 'corpus' ? ('corpus' as const) : parseSize(s)));
  const generatedSizes = cases.filter((c): c is number => typeof c === 'number');
  const peerSize = !a.peer ? null : generatedSizes.includes(1_000_000) ? 1_000_000 : (generatedSizes[0] ?? null);
  const log = (l: string) => process.stderr.write(`${l}\n`);
  try {
    const result = await runCompileBench({ cases, peerSize, timeoutMs: a.timeoutS * 1000, workDir: a.workDir, peersDir: join(tmpdir(), 'hushdns-bench-peers'), resultsDir: join(PACKAGE_ROOT, 'bench-results'), log });
    process.stdout.write(`\n## Compile benchmark\n\n${formatMachine(result.machine)} Load average at start: ${result.machine.loadAverage.map((x) => x.toFixed(2)).join(', ')}.\n\n${formatCompileTable(result)}\n\n`);
    process.stdout.write('Peak RSS: GNU time %M of the compiling process where available (else VmHWM polled every 20 ms). Wall: process start to exit, including Node start-up.\n');
  } finally {
    await stopAll();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench:compile: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
