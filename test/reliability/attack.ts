// One attack on a child-process server, measured for the summary: the server's RSS before and
// after, whether it died, and the valid queries timed while the attack ran, each also with the
// time the server or its client waited for a CPU taken out (sched.ts), so that a machine shared
// with other work is not mistaken for a slow server.
import type { ChildServer } from '../helpers/child-server.js';
import { SchedSampler, serverPart, type Timed } from './sched.js';
import { recordAttack, type AttackRow } from './summary.js';

/** A valid query must be answered this fast, less CPU waits, while the server is under attack (issue 7). */
export const MAX_VALID_MS = 100;

/** Queries faster than this are not worth attributing: they are their own server part. */
const ATTRIBUTE_ABOVE_MS = 20;

export class Attack {
  private readonly rssBefore: number | null;
  private readonly sched: SchedSampler;
  private readonly clients: number[];
  private maxMs: number | null = null;
  private maxFastMs = 0;
  private readonly slow: Timed[] = [];

  /** `clients`: the processes that time valid queries (this one by default). */
  constructor(
    private readonly srv: ChildServer,
    private readonly name: string,
    clients: number[] = [process.pid],
  ) {
    this.rssBefore = rssOf(srv);
    this.clients = [...clients];
    this.sched = new SchedSampler([srv.pid, ...clients]);
  }

  /** A process that times valid queries too (a prober started after the attack began). */
  watchClient(pid: number): void {
    this.clients.push(pid);
    this.sched.watch(pid);
  }

  /** Notes one valid query: sent at `at` (epoch ms), answered `ms` later. */
  latency(ms: number, at = Date.now() - ms): void {
    this.maxMs = Math.max(this.maxMs ?? 0, ms);
    if (ms > ATTRIBUTE_ABOVE_MS) this.slow.push({ at, ms });
    else this.maxFastMs = Math.max(this.maxFastMs, ms);
  }

  /** Runs a valid query and notes its latency (only when it succeeds; failures fail the test). */
  async timed<T>(ask: () => Promise<T>): Promise<T> {
    const at = Date.now();
    const started = performance.now();
    const result = await ask();
    this.latency(performance.now() - started, at);
    return result;
  }

  get maxLatencyMs(): number | null {
    return this.maxMs;
  }

  /** Records the row; call it once the attack is over, before asserting on it, so a failure still shows in the table. */
  finish(row: Pick<AttackRow, 'sent' | 'unit'> & Partial<Pick<AttackRow, 'upstreamFaults' | 'lostInSwaps' | 'note'>>): AttackRow {
    this.sched.stop();
    const serverMax = this.maxMs === null ? null : Math.max(this.maxFastMs, ...this.slow.map((t) => serverPart(this.sched, this.srv.pid, this.clients, t)));
    const pressure = this.sched.machineCpuPressure;
    const full: AttackRow = {
      attack: this.name,
      crashes: exited(this.srv) ? 1 : 0,
      maxLatencyMs: this.maxMs,
      maxServerLatencyMs: serverMax,
      cpuPressure: pressure === null ? null : Math.round(pressure * 100) / 100,
      rssBeforeMb: this.rssBefore,
      rssAfterMb: rssOf(this.srv),
      upstreamFaults: null,
      lostInSwaps: null,
      ...row,
    };
    recordAttack(full);
    return full;
  }
}

/** The server process is gone (whatever the reason: the suite never stops a server mid-attack). */
export function exited(srv: ChildServer): boolean {
  return srv.proc.exitCode !== null || srv.proc.signalCode !== null;
}

function rssOf(srv: ChildServer): number | null {
  if (exited(srv)) return null;
  try {
    return Math.round(srv.rssMb() * 10) / 10;
  } catch {
    return null; // it exited between the check and the read
  }
}
