// In-memory counters for the API and metrics: by outcome, protocol, type, vendor, plus a latency
// histogram. Cheap per query (integer increments and a Map lookup); the query log (a separate
// store) keeps the detail.
import type { VendorCatalog } from '../common/vendors.js';
import type { Answer, Outcome, Query } from './pipeline/types.js';

/** Upper bounds (ms) of the latency histogram buckets. */
export const LATENCY_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

export class Stats {
  readonly startedAt = Date.now();
  total = 0;
  readonly byOutcome = new Map<Outcome, number>();
  readonly byProtocol = { udp: 0, tcp: 0 };
  readonly byType = new Map<number, number>();
  readonly byVendor = new Map<string, { blocked: number; allowed: number }>();
  readonly rejectedByReason = new Map<string, number>();
  readonly latency = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  latencySumMs = 0;
  blocklistSwaps = 0;

  answered(query: Query, answer: Answer, ms: number, catalog: VendorCatalog): void {
    this.total++;
    this.byOutcome.set(answer.outcome, (this.byOutcome.get(answer.outcome) ?? 0) + 1);
    this.byProtocol[query.protocol]++;
    this.byType.set(query.q.qtype, (this.byType.get(query.q.qtype) ?? 0) + 1);
    const vendor = answer.vendor ?? catalog.vendorOf(query.q.name)?.id ?? null;
    if (vendor) {
      let v = this.byVendor.get(vendor);
      if (!v) this.byVendor.set(vendor, (v = { blocked: 0, allowed: 0 }));
      if (answer.outcome === 'blocked') v.blocked++;
      else v.allowed++;
    }
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]) i++;
    this.latency[i]++;
    this.latencySumMs += ms;
  }

  rejected(protocol: 'udp' | 'tcp', reason: string): void {
    const key = `${protocol}:${reason}`;
    this.rejectedByReason.set(key, (this.rejectedByReason.get(key) ?? 0) + 1);
  }

  onBlocklistSwap(): void {
    this.blocklistSwaps++;
  }

  count(outcome: Outcome): number {
    return this.byOutcome.get(outcome) ?? 0;
  }
}
