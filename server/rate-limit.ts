// Per-client token bucket (Pi-hole's default: 1000 queries a minute). Buckets refill lazily on
// use, so an idle client costs nothing; a sweep forgets clients that went quiet.

interface Bucket {
  tokens: number;
  updated: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  limited = 0;

  constructor(
    private readonly capacity: number,
    windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.perMs = capacity / windowMs;
  }

  /** Takes one token; false when the client is over its limit. */
  take(client: string): boolean {
    const t = this.now();
    let b = this.buckets.get(client);
    if (!b) {
      if (this.buckets.size > 100_000) this.sweep(t);
      b = { tokens: this.capacity, updated: t };
      this.buckets.set(client, b);
    } else {
      b.tokens = Math.min(this.capacity, b.tokens + (t - b.updated) * this.perMs);
      b.updated = t;
    }
    if (b.tokens < 1) {
      this.limited++;
      return false;
    }
    b.tokens -= 1;
    return true;
  }

  /** Drops buckets that have refilled completely: they carry no state worth keeping. */
  sweep(t = this.now()): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + (t - b.updated) * this.perMs >= this.capacity) this.buckets.delete(k);
    }
  }
}
