// UDP load for the reliability suite, in a process of its own so that neither the attack nor the
// measurement shares an event loop (or a garbage collector) with the test runner or the server:
//
//   fuzz:  paced, seeded hostile datagrams (bench/soak/hostile.ts) at a fixed rate
//   probe: one valid question every few milliseconds; its latency and correctness are the
//          "valid-query latency during the attack" the suite reports
//   flood: a window of concurrent valid questions from one source address, as fast as answers come
//
//   node dist/bench/soak/load.js '<LoadJob as JSON>'
//
// Prints {"ready":true} once its socket is bound, then one JSON report line when the job ends: when
// fuzz/flood have sent everything or run out of time, or when "stop" (or end of input) arrives on
// stdin. The test reads the report; nothing here decides pass or fail.
import { createSocket, type Socket } from 'node:dgram';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { buildQuery, parseAnswer } from '../lib/dns-probe.js';
import { hostilePackets } from './hostile.js';

interface Target {
  host: string;
  port: number;
  /** Source address to send from (e.g. 127.0.0.3: another client to the server). */
  bind?: string;
}

export type LoadJob =
  | (Target & { mode: 'fuzz'; seed: number; packets: number; ratePerSecond: number; maxMs: number })
  | (Target & { mode: 'probe'; name: string; expect: string; intervalMs: number; timeoutMs: number; slowMs?: number })
  | (Target & { mode: 'flood'; name: string; concurrency: number; total: number; timeoutMs: number; maxMs: number });

export interface LatencySummary {
  count: number;
  maxMs: number;
  p50Ms: number;
  p99Ms: number;
}

export interface FuzzReport {
  mode: 'fuzz';
  sent: number;
  answers: number;
  ms: number;
  /** Worst lag of this process's own event loop: how late the pacing timer ran. */
  selfStallMaxMs: number;
}

export interface ProbeReport {
  mode: 'probe';
  sent: number;
  correct: number;
  /** Answered, but not with the expected address (SERVFAIL included). */
  wrong: number;
  /** No answer within timeoutMs. */
  lost: number;
  latency: LatencySummary;
  /** Probes slower than slowMs (default 100): when they were sent (epoch ms) and how slow, the first 20,000. */
  slow: { at: number; ms: number }[];
  firstWrong: string | null;
  /** Worst lag of this process's own event loop: a slow probe the prober itself caused shows here. */
  selfStallMaxMs: number;
}

export interface FloodReport {
  mode: 'flood';
  sent: number;
  noerror: number;
  refused: number;
  other: number;
  lost: number;
  /** Largest REFUSED answer minus its query, in bytes (positive would be amplification); null without one. */
  maxRefusedExcessBytes: number | null;
  ms: number;
}

export type LoadReport = FuzzReport | ProbeReport | FloodReport;

const SLOW_MS = 100;

export function summarise(latencies: number[]): LatencySummary {
  if (latencies.length === 0) return { count: 0, maxMs: 0, p50Ms: 0, p99Ms: 0 };
  const s = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { count: s.length, maxMs: s[s.length - 1], p50Ms: at(0.5), p99Ms: at(0.99) };
}

async function openSocket(t: Target): Promise<Socket> {
  const socket = createSocket(t.host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, t.bind ?? (t.host.includes(':') ? '::1' : '127.0.0.1'), () => {
      socket.off('error', reject);
      resolve();
    });
  });
  // A flood can see ICMP errors (ECONNREFUSED) once the server is gone: counted as lost, not fatal.
  socket.on('error', () => {});
  return socket;
}

const nextTick = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function fuzz(job: Extract<LoadJob, { mode: 'fuzz' }>, stopped: () => boolean): Promise<FuzzReport> {
  const socket = await openSocket(job);
  let answers = 0;
  socket.on('message', () => answers++);
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  ready();
  const next = hostilePackets(job.seed);
  const started = performance.now();
  let sent = 0;
  // Paced in 2 ms slices: the rate is what the server sees. After a stall of this process the
  // backlog is dropped rather than sent at once, so a hiccup here never becomes a burst there.
  const burst = Math.max(1, Math.round(job.ratePerSecond / 100)); // 10 ms worth
  let credit = 0;
  let last = started;
  while (sent < job.packets && !stopped() && performance.now() - started < job.maxMs) {
    const now = performance.now();
    credit = Math.min(burst, credit + ((now - last) * job.ratePerSecond) / 1000);
    last = now;
    for (; credit >= 1 && sent < job.packets; credit--, sent++) socket.send(next(), job.port, job.host);
    await nextTick(2);
  }
  await nextTick(200); // late answers
  lag.disable();
  socket.close();
  return { mode: 'fuzz', sent, answers, ms: Math.round(performance.now() - started), selfStallMaxMs: lag.max / 1e6 };
}

async function probe(job: Extract<LoadJob, { mode: 'probe' }>, stopped: () => boolean): Promise<ProbeReport> {
  const socket = await openSocket(job);
  const waiting = new Map<number, { sentAt: number; timer: NodeJS.Timeout }>();
  const latencies: number[] = [];
  const slow: { at: number; ms: number }[] = [];
  const report: ProbeReport = { mode: 'probe', sent: 0, correct: 0, wrong: 0, lost: 0, latency: summarise([]), slow, firstWrong: null, selfStallMaxMs: 0 };
  socket.on('message', (msg: Buffer) => {
    if (msg.length < 2) return;
    const w = waiting.get(msg.readUInt16BE(0));
    if (!w) return;
    waiting.delete(msg.readUInt16BE(0));
    clearTimeout(w.timer);
    const ms = performance.now() - w.sentAt;
    latencies.push(ms);
    if (ms > (job.slowMs ?? SLOW_MS) && slow.length < 20_000) slow.push({ at: performance.timeOrigin + w.sentAt, ms: Math.round(ms * 10) / 10 });
    const a = parseAnswer(msg);
    if (a && a.rcode === 0 && a.address === job.expect) report.correct++;
    else {
      report.wrong++;
      report.firstWrong ??= a ? `rcode ${a.rcode}, address ${a.address}` : 'unparseable answer';
    }
  });
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  ready();
  let id = 0;
  while (!stopped()) {
    id = (id % 0xffff) + 1;
    const qid = id;
    const timer = setTimeout(() => {
      if (waiting.delete(qid)) report.lost++;
    }, job.timeoutMs);
    waiting.set(qid, { sentAt: performance.now(), timer });
    socket.send(buildQuery(job.name, qid), job.port, job.host);
    report.sent++;
    await nextTick(job.intervalMs);
  }
  // Let the last probes finish (or time out) so each one sent is counted once.
  while (waiting.size > 0) await nextTick(10);
  lag.disable();
  socket.close();
  return { ...report, latency: summarise(latencies), selfStallMaxMs: lag.max / 1e6 };
}

async function flood(job: Extract<LoadJob, { mode: 'flood' }>, stopped: () => boolean): Promise<FloodReport> {
  const socket = await openSocket(job);
  const report: FloodReport = { mode: 'flood', sent: 0, noerror: 0, refused: 0, other: 0, lost: 0, maxRefusedExcessBytes: null, ms: 0 };
  const queryLength = buildQuery(job.name, 1).length;
  const waiting = new Map<number, NodeJS.Timeout>();
  const started = performance.now();
  let id = 0;
  let finish: () => void = () => {};
  const done = new Promise<void>((r) => (finish = r));
  const more = (): boolean => report.sent < job.total && !stopped() && performance.now() - started < job.maxMs;
  const sendOne = (): void => {
    if (!more()) {
      if (waiting.size === 0) finish();
      return;
    }
    // IDs cycle through the window's worth of free values; a still-waiting ID is skipped.
    do id = (id % 0xffff) + 1;
    while (waiting.has(id));
    const qid = id;
    waiting.set(
      qid,
      setTimeout(() => {
        if (!waiting.delete(qid)) return;
        report.lost++;
        sendOne();
      }, job.timeoutMs),
    );
    report.sent++;
    socket.send(buildQuery(job.name, qid), job.port, job.host);
  };
  socket.on('message', (msg: Buffer) => {
    if (msg.length < 12) return;
    const timer = waiting.get(msg.readUInt16BE(0));
    if (timer === undefined) return;
    waiting.delete(msg.readUInt16BE(0));
    clearTimeout(timer);
    const rcode = msg[3] & 0x0f;
    if (rcode === 0) report.noerror++;
    else if (rcode === 5) {
      report.refused++;
      report.maxRefusedExcessBytes = Math.max(report.maxRefusedExcessBytes ?? -Infinity, msg.length - queryLength);
    } else report.other++;
    sendOne();
  });
  ready();
  for (let i = 0; i < job.concurrency; i++) sendOne();
  await done;
  socket.close();
  return { ...report, ms: Math.round(performance.now() - started) };
}

function ready(): void {
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as LoadJob;
  let stop = false;
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    if (d.includes('stop')) stop = true;
  });
  process.stdin.on('end', () => (stop = true));
  const stopped = () => stop;
  const report = job.mode === 'fuzz' ? await fuzz(job, stopped) : job.mode === 'probe' ? await probe(job, stopped) : await flood(job, stopped);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`soak load: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
