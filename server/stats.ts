// In-memory counters for /metrics and /api/health: queries by outcome × protocol × type, a latency
// histogram (overall and per upstream for forwarded answers), refusals by cause, and packets
// refused before the chain. Per query this is a few integer increments in fixed typed arrays (one
// Map lookup for a forwarded answer, none for the rest); prom-client reads them on scrape. The
// query log (a separate store) keeps the detail and the per-device, per-vendor roll-ups.
import { LABELLED_TYPES, OUTCOME_CODE, OUTCOMES, TYPE_SLOT, typeName } from './querylog/codes.js';
import type { Answer, Outcome, Query, Refusal } from './pipeline/types.js';

/** Upper bounds (ms) of the latency histogram buckets. */
export const LATENCY_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

const TYPE_SLOTS = LABELLED_TYPES.length;
const PROTOCOL_SLOTS = 2;
/** Distinct rejection reasons kept apart; the rest are counted together as "other". */
const MAX_REJECT_REASONS = 64;
/** Why a query was refused, as /metrics labels it: the access stage's Refusal, or another stage's (hygiene: AXFR…). */
export const REFUSAL_CAUSES = ['rate-limit', 'acl', 'other'] as const;
const REFUSAL_SLOT: Record<Refusal, number> = { 'rate-limited': 0, 'outside-allow-clients': 1 };
const OTHER_REFUSAL = 2;
const REFUSED = OUTCOME_CODE.refused;
const FORWARDED = OUTCOME_CODE.forwarded;

/** A latency histogram: counts per bucket (the last is +Inf) and the sum. */
export interface Histogram {
  counts: Float64Array;
  sumMs: number;
}

/** Every counter of a Stats as plain data: what a worker process reports to the primary. */
export interface StatsSnapshot {
  total: number;
  counts: number[];
  byOutcomeCode: number[];
  latency: number[];
  latencySumMs: number;
  upstreamLatency: [string, { counts: number[]; sumMs: number }][];
  refusedByCause: number[];
  rejectedByReason: [string, number][];
}

export interface QueryCount {
  outcome: Outcome;
  protocol: 'udp' | 'tcp';
  /** Type name (A, AAAA, HTTPS…) or "other". */
  type: string;
  count: number;
}

export class Stats {
  readonly startedAt = Date.now();
  total = 0;
  /** [outcome][protocol][type slot], flattened. */
  private readonly counts = new Float64Array(OUTCOMES.length * PROTOCOL_SLOTS * TYPE_SLOTS);
  readonly byOutcomeCode = new Float64Array(OUTCOMES.length);
  /** Cumulative-free bucket counts: latency[i] counts answers in (bucket[i-1], bucket[i]]; the last is +Inf. */
  readonly latency = new Float64Array(LATENCY_BUCKETS_MS.length + 1);
  latencySumMs = 0;
  /** Forwarded answers, by the upstream that answered: arrival to answer, as the client waited. */
  readonly upstreamLatency = new Map<string, Histogram>();
  /** Refused queries by cause (REFUSAL_CAUSES order). */
  readonly refusedByCause = new Float64Array(REFUSAL_CAUSES.length);
  readonly rejectedByReason = new Map<string, number>();
  blocklistSwaps = 0;

  answered(query: Query, answer: Answer, ms: number): void {
    this.total++;
    const o = OUTCOME_CODE[answer.outcome] ?? OUTCOME_CODE.servfail;
    this.byOutcomeCode[o]++;
    this.counts[(o * PROTOCOL_SLOTS + (query.protocol === 'tcp' ? 1 : 0)) * TYPE_SLOTS + TYPE_SLOT[query.q.qtype]]++;
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]) i++;
    this.latency[i]++;
    this.latencySumMs += ms;
    if (o === FORWARDED && answer.upstream !== undefined) {
      let h = this.upstreamLatency.get(answer.upstream);
      if (!h) this.upstreamLatency.set(answer.upstream, (h = { counts: new Float64Array(LATENCY_BUCKETS_MS.length + 1), sumMs: 0 }));
      h.counts[i]++;
      h.sumMs += ms;
    } else if (o === REFUSED) this.refusedByCause[answer.refusal === undefined ? OTHER_REFUSAL : REFUSAL_SLOT[answer.refusal]]++;
  }

  /** A packet answered or dropped before the chain. Reasons carry numbers ("message is 5 octets"), folded to keep the set small. */
  rejected(protocol: 'udp' | 'tcp', reason: string): void {
    let key = `${protocol}: ${reason.replace(/\d+/g, 'N')}`;
    if (!this.rejectedByReason.has(key) && this.rejectedByReason.size >= MAX_REJECT_REASONS) key = `${protocol}: other`;
    this.rejectedByReason.set(key, (this.rejectedByReason.get(key) ?? 0) + 1);
  }

  onBlocklistSwap(): void {
    this.blocklistSwaps++;
  }

  snapshot(): StatsSnapshot {
    return {
      total: this.total,
      counts: Array.from(this.counts),
      byOutcomeCode: Array.from(this.byOutcomeCode),
      latency: Array.from(this.latency),
      latencySumMs: this.latencySumMs,
      upstreamLatency: [...this.upstreamLatency].map(([name, h]) => [name, { counts: Array.from(h.counts), sumMs: h.sumMs }]),
      refusedByCause: Array.from(this.refusedByCause),
      rejectedByReason: [...this.rejectedByReason],
    };
  }

  /** Replaces every query counter with the sum of `snapshots` (the primary's view of its workers). */
  loadSum(snapshots: readonly StatsSnapshot[]): void {
    this.total = 0;
    this.latencySumMs = 0;
    this.counts.fill(0);
    this.byOutcomeCode.fill(0);
    this.latency.fill(0);
    this.refusedByCause.fill(0);
    this.upstreamLatency.clear();
    this.rejectedByReason.clear();
    const add = (into: Float64Array, from: readonly number[]) => {
      for (let i = 0; i < into.length && i < from.length; i++) into[i] += from[i];
    };
    for (const s of snapshots) {
      this.total += s.total;
      this.latencySumMs += s.latencySumMs;
      add(this.counts, s.counts);
      add(this.byOutcomeCode, s.byOutcomeCode);
      add(this.latency, s.latency);
      add(this.refusedByCause, s.refusedByCause);
      for (const [name, h] of s.upstreamLatency) {
        let mine = this.upstreamLatency.get(name);
        if (!mine) this.upstreamLatency.set(name, (mine = { counts: new Float64Array(LATENCY_BUCKETS_MS.length + 1), sumMs: 0 }));
        add(mine.counts, h.counts);
        mine.sumMs += h.sumMs;
      }
      for (const [key, n] of s.rejectedByReason) this.rejectedByReason.set(key, (this.rejectedByReason.get(key) ?? 0) + n);
    }
  }

  count(outcome: Outcome): number {
    return this.byOutcomeCode[OUTCOME_CODE[outcome]];
  }

  /** Every non-zero (outcome, protocol, type) counter. */
  queryCounts(): QueryCount[] {
    const out: QueryCount[] = [];
    for (let o = 0; o < OUTCOMES.length; o++) {
      for (let p = 0; p < PROTOCOL_SLOTS; p++) {
        for (let t = 0; t < TYPE_SLOTS; t++) {
          const count = this.counts[(o * PROTOCOL_SLOTS + p) * TYPE_SLOTS + t];
          if (count > 0) out.push({ outcome: OUTCOMES[o], protocol: p === 0 ? 'udp' : 'tcp', type: t === 0 ? 'other' : typeName(LABELLED_TYPES[t]), count });
        }
      }
    }
    return out;
  }
}
