// The set of configured upstreams and the policy for using them: failover (in order, skipping
// unhealthy ones) or race (ask several at once, first good answer wins), with a per-attempt
// timeout, an overall time budget and simple health marking.
//
// Health: an upstream that fails `failThreshold` times in a row (timeout, network error, garbage,
// REFUSED) is marked down for `downMs` and skipped; after that it is tried again and marked up as
// soon as it answers. SERVFAIL moves on to the next upstream but proves the server reachable, so
// it never marks one down: validating resolvers SERVFAIL on every broken-DNSSEC name, and a
// client retrying such a name must not knock out healthy upstreams.
import { createUpstream } from './create.js';
import { UpstreamConfigError, type UpstreamSpec } from './spec.js';
import { UpstreamError, type Upstream, type UpstreamClientOptions, type UpstreamCounters, type UpstreamFailure } from './types.js';
import { RCODE_REFUSED, RCODE_SERVFAIL, rcodeOf } from './wire.js';

export { createUpstream } from './create.js';

export interface PoolOptions {
  strategy: 'failover' | 'race';
  /** Longest wait for one upstream. */
  timeoutMs: number;
  /** Consecutive failures that mark an upstream down (default 3). */
  failThreshold?: number;
  /** How long a down upstream is skipped (default 30 s). */
  downMs?: number;
  /** Longest a whole exchange may take across all attempts (default 2 × timeoutMs). */
  budgetMs?: number;
}

export interface PoolAnswer {
  response: Buffer;
  /** Name of the upstream that answered. */
  upstream: string;
  /** Time from the call to the answer, all attempts included. */
  ms: number;
}

export interface UpstreamHealth {
  name: string;
  up: boolean;
  consecutiveFailures: number;
  counters: UpstreamCounters;
}

/** At most this many upstreams are asked at once in race mode. */
const RACE_WIDTH = 3;

interface Member {
  readonly upstream: Upstream;
  consecutiveFailures: number;
  downUntil: number;
}

type Attempt = { ok: true; response: Buffer } | { ok: false; failure: UpstreamFailure; servfail?: Buffer };

export class UpstreamPool {
  private readonly members: Member[];
  private readonly timeoutMs: number;
  private readonly budgetMs: number;
  private readonly failThreshold: number;
  private readonly downMs: number;

  constructor(
    specs: UpstreamSpec[],
    private readonly opts: PoolOptions,
    clientOpts: UpstreamClientOptions = {},
  ) {
    if (specs.length === 0) throw new UpstreamConfigError('', 'no upstream is configured');
    if (!(opts.timeoutMs > 0)) throw new RangeError(`upstream timeoutMs must be positive, got ${opts.timeoutMs}`);
    this.timeoutMs = opts.timeoutMs;
    this.budgetMs = opts.budgetMs ?? 2 * opts.timeoutMs;
    this.failThreshold = Math.max(1, opts.failThreshold ?? 3);
    this.downMs = opts.downMs ?? 30_000;
    this.members = specs.map((spec) => ({ upstream: createUpstream(spec, clientOpts), consecutiveFailures: 0, downUntil: 0 }));
  }

  exchange(query: Buffer): Promise<PoolAnswer> {
    return this.opts.strategy === 'race' ? this.race(query) : this.failover(query);
  }

  health(): UpstreamHealth[] {
    const now = performance.now();
    return this.members.map((m) => ({
      name: m.upstream.name,
      up: now >= m.downUntil,
      consecutiveFailures: m.consecutiveFailures,
      counters: { ...m.upstream.counters },
    }));
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.upstream.close()));
  }

  private async failover(query: Buffer): Promise<PoolAnswer> {
    const started = performance.now();
    const deadline = started + this.budgetMs;
    const causes: UpstreamFailure[] = [];
    let servfail: { response: Buffer; upstream: string } | null = null;
    for (const member of this.candidates()) {
      const left = Math.floor(deadline - performance.now());
      if (left < 1) {
        causes.push({ upstream: member.upstream.name, code: 'skipped', message: `time budget of ${this.budgetMs} ms used up` });
        continue;
      }
      const attempt = await this.attempt(member, query, Math.min(this.timeoutMs, left));
      if (attempt.ok) return { response: attempt.response, upstream: member.upstream.name, ms: performance.now() - started };
      causes.push(attempt.failure);
      if (attempt.servfail !== undefined && servfail === null) servfail = { response: attempt.servfail, upstream: member.upstream.name };
    }
    if (servfail !== null) return { ...servfail, ms: performance.now() - started };
    throw allFailed(causes);
  }

  private race(query: Buffer): Promise<PoolAnswer> {
    const started = performance.now();
    const racers = this.candidates().slice(0, RACE_WIDTH);
    const timeoutMs = Math.min(this.timeoutMs, this.budgetMs);
    return new Promise<PoolAnswer>((resolve, reject) => {
      const causes: UpstreamFailure[] = [];
      let servfail: { response: Buffer; upstream: string } | null = null;
      let pending = racers.length;
      let settled = false;
      for (const member of racers) {
        // Losers keep running to their own end so their health and counters stay true.
        void this.attempt(member, query, timeoutMs).then((attempt) => {
          pending--;
          if (settled) return;
          if (attempt.ok) {
            settled = true;
            return resolve({ response: attempt.response, upstream: member.upstream.name, ms: performance.now() - started });
          }
          causes.push(attempt.failure);
          if (attempt.servfail !== undefined && servfail === null) servfail = { response: attempt.servfail, upstream: member.upstream.name };
          if (pending > 0) return;
          settled = true;
          if (servfail !== null) resolve({ ...servfail, ms: performance.now() - started });
          else reject(allFailed(causes));
        });
      }
    });
  }

  /**
   * Healthy upstreams in configured order, then the ones marked down as a last resort: when every
   * healthy one fails, a recovered upstream still gets its chance within the time budget instead of
   * waiting out its down period.
   */
  private candidates(): Member[] {
    const now = performance.now();
    const up = this.members.filter((m) => now >= m.downUntil);
    if (up.length === this.members.length) return this.members;
    return [...up, ...this.members.filter((m) => now < m.downUntil)];
  }

  /** One exchange with one upstream, its outcome booked against that upstream's health. Never rejects. */
  private async attempt(member: Member, query: Buffer, timeoutMs: number): Promise<Attempt> {
    const name = member.upstream.name;
    let response: Buffer;
    try {
      response = await member.upstream.exchange(query, timeoutMs);
    } catch (err) {
      this.markFailed(member);
      if (err instanceof UpstreamError) return { ok: false, failure: { upstream: name, code: err.code, message: err.message } };
      return { ok: false, failure: { upstream: name, code: 'network', message: `${name}: ${String(err)}` } };
    }
    const rcode = rcodeOf(response);
    if (rcode === RCODE_REFUSED) {
      this.markFailed(member);
      return { ok: false, failure: { upstream: name, code: 'refused', message: `${name}: answered REFUSED` } };
    }
    this.markUp(member);
    if (rcode === RCODE_SERVFAIL) return { ok: false, failure: { upstream: name, code: 'servfail', message: `${name}: answered SERVFAIL` }, servfail: response };
    return { ok: true, response };
  }

  private markFailed(member: Member): void {
    member.consecutiveFailures++;
    if (member.consecutiveFailures >= this.failThreshold) member.downUntil = performance.now() + this.downMs;
  }

  private markUp(member: Member): void {
    member.consecutiveFailures = 0;
    member.downUntil = 0;
  }
}

function allFailed(causes: UpstreamFailure[]): UpstreamError {
  const detail = causes.map((c) => (c.message.startsWith(c.upstream) ? c.message : `${c.upstream}: ${c.message}`)).join('; ');
  return new UpstreamError('all-failed', `every upstream failed: ${detail}`, undefined, causes);
}
