// The answer cache: upstream response bodies (no OPT, any ID) with the offsets of their TTLs, so a
// hit is one copy and a few integer writes, never a re-parse. Bounded by entries and by bytes,
// least recently used out first (a Map keeps insertion order; a hit re-inserts).
import type { ResponseInfo } from './wire/message.js';
import { RCODE } from './wire/constants.js';

export interface CacheOptions {
  maxEntries: number;
  maxBytes: number;
  minTtl: number; // seconds
  maxTtl: number; // seconds
  /** How long after expiry an entry may still be served stale (ms); 0 drops entries at expiry. */
  staleMaxAgeMs: number;
}

export interface CacheEntry {
  body: Buffer;
  ttlOffsets: number[];
  rcode: number;
  cnames: readonly string[];
  storedAt: number;
  ttl: number; // seconds, after clamping
  expiresAt: number;
  staleUntil: number;
  hits: number;
  refreshing: boolean;
}

/** Negative answers without an SOA still get a short life: enough to absorb retry bursts. */
const NEGATIVE_WITHOUT_SOA_TTL = 10;
const ENTRY_OVERHEAD = 160; // Map slot, entry object, key string: a rough per-entry cost

export class AnswerCache {
  private readonly map = new Map<string, CacheEntry>();
  private bytes = 0;
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(private readonly opts: CacheOptions) {}

  get enabled(): boolean {
    return this.opts.maxEntries > 0 && this.opts.maxBytes > 0;
  }

  get size(): number {
    return this.map.size;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** The entry for key, fresh or stale (callers compare expiresAt), refreshed in LRU order. */
  get(key: string, now: number): CacheEntry | undefined {
    const e = this.map.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    if (now > e.staleUntil) {
      this.remove(key, e);
      this.misses++;
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, e);
    if (now < e.expiresAt) this.hits++;
    return e;
  }

  /** Stores an upstream answer when it may be cached; returns the entry or null. */
  set(key: string, body: Buffer, info: ResponseInfo, now: number): CacheEntry | null {
    if (!this.enabled || info.tc) return null;
    const ttl = this.ttlFor(info);
    if (ttl === null || ttl <= 0) return null;
    const old = this.map.get(key);
    if (old) this.remove(key, old);
    const entry: CacheEntry = {
      body,
      ttlOffsets: info.ttlOffsets,
      rcode: info.rcode,
      cnames: info.cnameTargets,
      storedAt: now,
      ttl,
      expiresAt: now + ttl * 1000,
      staleUntil: now + ttl * 1000 + this.opts.staleMaxAgeMs,
      hits: 0,
      refreshing: false,
    };
    this.map.set(key, entry);
    this.bytes += body.length + key.length + ENTRY_OVERHEAD;
    this.evict();
    return entry;
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  private ttlFor(info: ResponseInfo): number | null {
    let ttl: number | null;
    if (info.rcode === RCODE.NXDOMAIN || (info.rcode === RCODE.NOERROR && info.ancount === 0)) {
      ttl = info.negativeTtl ?? NEGATIVE_WITHOUT_SOA_TTL;
    } else if (info.rcode === RCODE.NOERROR) {
      ttl = info.minTtl;
    } else {
      return null; // SERVFAIL, REFUSED…: a passing state, not an answer
    }
    if (ttl === null) return null;
    return Math.min(this.opts.maxTtl, Math.max(this.opts.minTtl, ttl));
  }

  private remove(key: string, e: CacheEntry): void {
    this.map.delete(key);
    this.bytes -= e.body.length + key.length + ENTRY_OVERHEAD;
  }

  private evict(): void {
    while (this.map.size > this.opts.maxEntries || this.bytes > this.opts.maxBytes) {
      const first = this.map.entries().next();
      if (first.done) return;
      this.remove(first.value[0], first.value[1]);
      this.evictions++;
    }
  }
}

export function cacheKey(name: string, qtype: number, dnssecOk: boolean, cd: boolean): string {
  return `${name}|${qtype}${dnssecOk ? '|d' : ''}${cd ? '|c' : ''}`;
}
