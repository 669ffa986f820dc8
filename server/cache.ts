// The answer cache: upstream response bodies (no OPT, any ID) with the offsets of their TTLs, so a
// hit is one copy and a few integer writes, never a re-parse. Bounded by entries and by bytes,
// least recently used out first (a Map keeps insertion order). A hit re-inserts an entry only
// when it has drifted into the older half of the Map: hot entries, which are always near the
// young end, cost one Map lookup per hit instead of a delete and an insert.
import type { ResponseInfo } from './wire/message.js';
import { RCODE, TYPE } from './wire/constants.js';

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
  /** Insertion sequence number of its current place in the Map (for lazy LRU promotion). */
  seq: number;
}

/** Negative answers without an SOA still get a short life: enough to absorb retry bursts. */
const NEGATIVE_WITHOUT_SOA_TTL = 10;
const ENTRY_OVERHEAD = 160; // Map slot, entry object, key string: a rough per-entry cost

export class AnswerCache {
  private readonly map = new Map<string, CacheEntry>();
  private bytes = 0;
  private seq = 0;
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
    if (this.seq - e.seq >= this.map.size >>> 1) {
      this.map.delete(key);
      this.map.set(key, e);
      e.seq = ++this.seq;
    }
    if (now < e.expiresAt) this.hits++;
    return e;
  }

  /**
   * Stores an upstream answer when it may be cached; returns the entry or null. The entry's body is
   * `body` itself unless a TTL in it had to change (see fitTtls), then a copy: callers compare to
   * learn whether the answer they already rendered says more than the cache will keep.
   */
  set(key: string, body: Buffer, info: ResponseInfo, now: number): CacheEntry | null {
    if (!this.enabled || info.tc) return null;
    const ttl = this.ttlFor(info);
    if (ttl === null || ttl <= 0) return null;
    const old = this.map.get(key);
    if (old) this.remove(key, old);
    const entry: CacheEntry = {
      body: this.fitTtls(body, info, ttl),
      ttlOffsets: info.ttlOffsets,
      rcode: info.rcode,
      cnames: info.cnameTargets,
      storedAt: now,
      ttl,
      expiresAt: now + ttl * 1000,
      staleUntil: now + ttl * 1000 + this.opts.staleMaxAgeMs,
      hits: 0,
      refreshing: false,
      seq: ++this.seq,
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

  /**
   * The TTLs clients are given must match how long we keep the entry: each one is clamped to
   * [minTtl, maxTtl] (so --cache-max-ttl also bounds what clients cache), and in a negative answer
   * to the entry's own lifetime, min(SOA TTL, SOA MINIMUM) (RFC 2308 §5): an SOA sent with TTL
   * 3600 and MINIMUM 60 must not tell clients to keep the NXDOMAIN for an hour.
   */
  private fitTtls(body: Buffer, info: ResponseInfo, entryTtl: number): Buffer {
    const cap = isNegative(info) ? entryTtl : this.opts.maxTtl;
    let out: Buffer | null = null;
    for (const o of info.ttlOffsets) {
      const raw = body.readUInt32BE(o);
      const ttl = raw > 0x7fffffff ? 0 : raw; // RFC 2181 §8: the top bit set means 0
      const fitted = Math.min(cap, Math.max(this.opts.minTtl, ttl));
      if (fitted === raw) continue;
      out ??= Buffer.from(body);
      out.writeUInt32BE(fitted, o);
    }
    return out ?? body;
  }

  private ttlFor(info: ResponseInfo): number | null {
    let ttl: number | null;
    if (isNegative(info)) {
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

/**
 * NXDOMAIN, or NODATA: NOERROR without a record of the asked type, possibly behind a CNAME chain
 * (RFC 2308 §2.2). Both are cached for the SOA's negative TTL.
 */
function isNegative(info: ResponseInfo): boolean {
  if (info.rcode === RCODE.NXDOMAIN) return true;
  if (info.rcode !== RCODE.NOERROR) return false;
  return info.ancount === 0 || (info.qtype !== TYPE.ANY && !info.answerTypes.includes(info.qtype));
}

export function cacheKey(name: string, qtype: number, dnssecOk: boolean, cd: boolean): string {
  return `${name}|${qtype}${dnssecOk ? '|d' : ''}${cd ? '|c' : ''}`;
}
