// Was the server slow, or was it not given a CPU? Linux keeps, per thread, the time it ran and
// the time it sat runnable in a run queue waiting for a CPU (/proc/PID/schedstat; for a process
// that is its main thread: the one that answers DNS). Sampled through an attack, they tell a
// server that cannot keep up (running all the time) from one that other processes on a shared
// machine kept off the CPU (waiting). /proc/pressure/cpu adds how starved the whole machine was.
import { readFileSync } from 'node:fs';

interface Sample {
  /** Epoch ms. */
  at: number;
  /** Per watched PID: ns run and ns waited for a CPU, since the thread started. */
  threads: Map<number, { runNs: number; waitNs: number }>;
}

export interface SchedWindow {
  runMs: number;
  waitMs: number;
}

function readSched(pid: number): { runNs: number; waitNs: number } | null {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { runNs: run, waitNs: wait };
  } catch {
    return null; // no schedstat (kernel without it, or the process is gone)
  }
}

/** Microseconds some task waited for a CPU since boot (PSI), or null without PSI. */
function cpuPressureUs(): number | null {
  try {
    return Number(/^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1] ?? NaN) || null;
  } catch {
    return null;
  }
}

export class SchedSampler {
  private readonly samples: Sample[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly pressureStart: number | null;
  private pressureEnd: number | null = null;
  private readonly startedAt = Date.now();
  private stoppedAt = 0;
  private readonly pids = new Set<number>();

  constructor(pids: number[], everyMs = 10) {
    for (const p of pids) this.pids.add(p);
    this.pressureStart = cpuPressureUs();
    this.take();
    this.timer = setInterval(() => this.take(), everyMs);
    this.timer.unref(); // a test that fails before stop() must not keep the worker alive
  }

  /** Also watch this process from now on (e.g. a prober started after the sampler). */
  watch(pid: number): void {
    this.pids.add(pid);
  }

  stop(): void {
    clearInterval(this.timer);
    this.take();
    this.pressureEnd = cpuPressureUs();
    this.stoppedAt = Date.now();
  }

  /** Share of the sampled time in which some task on the machine waited for a CPU (PSI "some"). */
  get machineCpuPressure(): number | null {
    if (this.pressureStart === null || this.pressureEnd === null) return null;
    return (this.pressureEnd - this.pressureStart) / 1000 / Math.max(1, this.stoppedAt - this.startedAt);
  }

  /**
   * Run and wait time of `pid`'s main thread within [from, to] (epoch ms), counted only between
   * samples inside the interval: it can only under-state the wait, never excuse too much.
   */
  within(pid: number, from: number, to: number): SchedWindow {
    const inside = this.samples.filter((x) => x.at >= from && x.at <= to && x.threads.has(pid));
    if (inside.length < 2) return { runMs: 0, waitMs: 0 };
    const a = inside[0].threads.get(pid)!;
    const b = inside[inside.length - 1].threads.get(pid)!;
    return { runMs: (b.runNs - a.runNs) / 1e6, waitMs: (b.waitNs - a.waitNs) / 1e6 };
  }

  /** Run and wait time of `pid` over the whole sampling. */
  total(pid: number): SchedWindow {
    return this.within(pid, 0, Number.MAX_SAFE_INTEGER);
  }

  private take(): void {
    const threads = new Map<number, { runNs: number; waitNs: number }>();
    for (const pid of this.pids) {
      const r = readSched(pid);
      if (r) threads.set(pid, r);
    }
    this.samples.push({ at: Date.now(), threads });
  }
}

export interface Timed {
  /** Epoch ms when the query was sent. */
  at: number;
  ms: number;
}

/**
 * The part of a query's latency the server is answerable for: its latency less the longest time
 * that the server, or the client that timed it, sat runnable without a CPU while the query was in
 * flight or in an equal stretch before it. The stretch before counts because that is when the
 * datagrams it queued behind piled up: a server kept off the CPU for 300 ms at 10,000 packets a
 * second owes 3,000 packets when it gets the CPU back, and a query sent then waits behind them.
 */
export function serverPart(s: SchedSampler, server: number, clients: readonly number[], t: Timed): number {
  const waits = [server, ...clients].map((pid) => s.within(pid, t.at - t.ms, t.at + t.ms).waitMs);
  return Math.max(0, t.ms - Math.max(0, ...waits));
}
