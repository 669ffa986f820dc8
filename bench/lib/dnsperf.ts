// Running Debian's dnsperf against one server and reading its report: queries sent/completed/lost,
// response codes, run time and QPS; with `latencies` it runs verbose (one line per query with its
// latency, written straight to a file so the harness does no work during the run) and computes
// percentiles from those lines.
import { createReadStream, openSync, closeSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { startProcess, stopProcess } from './proc.js';

export interface DnsperfOptions {
  port: number;
  /** Query file, one `name TYPE` per line. */
  file: string;
  seconds: number;
  /** Fixed rate (-Q); unlimited when absent. */
  qps?: number;
  /** Stop after this many passes through the file (-n), e.g. 1 when every name must be new. */
  passes?: number;
  /** Outstanding queries (-q). */
  outstanding?: number;
  /** Write per-query latencies to this file and compute percentiles. */
  latencies?: string;
  /** CPU list for taskset, e.g. "1". */
  cpus?: string;
  /** Per-query timeout in seconds (-t). */
  timeout?: number;
}

export interface DnsperfResult {
  sent: number;
  completed: number;
  lost: number;
  runSeconds: number;
  /** Wall time of the dnsperf process (start-up and the wait for late answers included). */
  wallSeconds: number;
  qps: number;
  avgLatencyMs: number | null;
  rcodes: Record<string, number>;
  p50Ms?: number;
  p99Ms?: number;
  /** Samples behind the percentiles. */
  latencySamples?: number;
}

export class DnsperfError extends Error {}

export async function runDnsperf(opts: DnsperfOptions): Promise<DnsperfResult> {
  const args = ['-s', '127.0.0.1', '-p', String(opts.port), '-d', opts.file, '-l', String(opts.seconds), '-t', String(opts.timeout ?? 1)];
  args.push('-q', String(opts.outstanding ?? 100), '-c', '1');
  if (opts.qps) args.push('-Q', String(opts.qps));
  if (opts.passes) args.push('-n', String(opts.passes));
  if (opts.latencies) args.push('-v');
  const cmd = opts.cpus ? 'taskset' : 'dnsperf';
  const full = opts.cpus ? ['-c', opts.cpus, 'dnsperf', ...args] : args;
  let fd: number | null = null;
  let proc;
  const t0 = performance.now();
  if (opts.latencies) {
    // Verbose lines go straight to a file; the summary is read back from the same file.
    fd = openSync(opts.latencies, 'w');
    proc = startProcess(cmd, full, { stdio: ['ignore', fd, 'pipe'] });
  } else {
    proc = startProcess(cmd, full);
  }
  const timer = setTimeout(() => void stopProcess(proc, 2000), (opts.seconds + (opts.timeout ?? 1) + 15) * 1000);
  const code = await proc.exited;
  const wallSeconds = (performance.now() - t0) / 1000;
  clearTimeout(timer);
  if (fd !== null) closeSync(fd);
  let summary = proc.output();
  let latencies: number[] = [];
  if (opts.latencies) {
    const read = await readVerbose(opts.latencies);
    summary += read.rest;
    latencies = read.latencies;
    rmSync(opts.latencies, { force: true });
  }
  if (code !== 0) throw new DnsperfError(`dnsperf exited with ${code}: ${summary.slice(-2000)}`);
  const result = { ...parseSummary(summary), wallSeconds };
  if (opts.latencies) {
    latencies.sort((a, b) => a - b);
    result.latencySamples = latencies.length;
    if (latencies.length > 0) {
      result.p50Ms = percentile(latencies, 0.5) * 1000;
      result.p99Ms = percentile(latencies, 0.99) * 1000;
    }
  }
  return result;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i];
}

async function readVerbose(path: string): Promise<{ latencies: number[]; rest: string }> {
  const latencies: number[] = [];
  let rest = '';
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of rl) {
    // "> NOERROR example.com A 0.000123"
    if (line.charCodeAt(0) === 62 /* > */) {
      const sp = line.lastIndexOf(' ');
      const v = Number(line.slice(sp + 1));
      if (Number.isFinite(v)) latencies.push(v);
    } else {
      rest += `${line}\n`;
    }
  }
  return { latencies, rest };
}

function num(text: string, label: string): number {
  const at = text.indexOf(label);
  if (at < 0) return NaN;
  return Number.parseFloat(text.slice(at + label.length).trim());
}

export function parseSummary(text: string): Omit<DnsperfResult, 'wallSeconds'> {
  const sent = num(text, 'Queries sent:');
  const completed = num(text, 'Queries completed:');
  const lost = num(text, 'Queries lost:');
  const runSeconds = num(text, 'Run time (s):');
  const qps = num(text, 'Queries per second:');
  const avg = num(text, 'Average Latency (s):');
  if (!Number.isFinite(sent) || !Number.isFinite(completed)) throw new DnsperfError(`cannot read dnsperf's summary: ${text.slice(-1500)}`);
  const rcodes: Record<string, number> = {};
  const m = /Response codes:\s*(.*)/.exec(text);
  if (m) for (const part of m[1].matchAll(/([A-Z]+) (\d+)/g)) rcodes[part[1]] = Number(part[2]);
  return { sent, completed, lost: Number.isFinite(lost) ? lost : 0, runSeconds, qps, avgLatencyMs: Number.isFinite(avg) ? avg * 1000 : null, rcodes };
}
