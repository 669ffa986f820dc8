// The answer cache on its own: size bounds, LRU order with lazy promotion, TTL clamps and the
// stale window. Responses are built with dns2 (independent of our wire code) and read with ours.
import dns2 from 'dns2';
import { describe, expect, it } from 'vitest';
import { AnswerCache, cacheKey, type CacheOptions } from '../server/cache.js';
import { inspectResponse } from '../server/wire/message.js';

const { Packet } = dns2;

function response(name: string, ttl: number, address = '192.0.2.1'): Buffer {
  const p = new Packet();
  p.header.id = 1;
  p.header.qr = 1;
  p.header.rd = 1;
  p.header.ra = 1;
  p.questions.push({ name, type: Packet.TYPE.A, class: Packet.CLASS.IN });
  p.answers.push({ name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl, address });
  return Buffer.from(p.toBuffer());
}

function store(cache: AnswerCache, name: string, ttl: number, now: number) {
  const body = response(name, ttl);
  const info = inspectResponse(body);
  if (!info) throw new Error(`test response for ${name} did not parse`);
  return cache.set(cacheKey(name, 1, false, false), body, info, now);
}

const OPTS: CacheOptions = { maxEntries: 100, maxBytes: 1 << 20, minTtl: 0, maxTtl: 86400, staleMaxAgeMs: 0 };
const get = (cache: AnswerCache, name: string, now: number) => cache.get(cacheKey(name, 1, false, false), now);

describe('AnswerCache', () => {
  it('holds at most maxEntries, dropping the least recently stored first', () => {
    const cache = new AnswerCache({ ...OPTS, maxEntries: 10 });
    for (let i = 0; i < 25; i++) store(cache, `n${i}.example`, 300, 1000);
    expect(cache.size).toBe(10);
    expect(get(cache, 'n0.example', 1000)).toBeUndefined();
    expect(get(cache, 'n24.example', 1000)).toBeDefined();
    expect(cache.evictions).toBe(15);
  });

  it('holds at most maxBytes', () => {
    const cache = new AnswerCache({ ...OPTS, maxEntries: 1000, maxBytes: 4096 });
    for (let i = 0; i < 200; i++) store(cache, `name-${i}.example.org`, 300, 1000);
    expect(cache.byteSize).toBeLessThanOrEqual(4096);
    expect(cache.size).toBeGreaterThan(5);
    expect(cache.size).toBeLessThan(200);
  });

  it('keeps an entry that is read often while many others pass through', () => {
    const cache = new AnswerCache({ ...OPTS, maxEntries: 20 });
    store(cache, 'hot.example', 300, 1000);
    for (let i = 0; i < 500; i++) {
      store(cache, `cold${i}.example`, 300, 1000);
      expect(get(cache, 'hot.example', 1000), `after ${i} others`).toBeDefined();
    }
  });

  it('clamps TTLs to min and max, in what it keeps and in the body clients get', () => {
    const cache = new AnswerCache({ ...OPTS, minTtl: 60, maxTtl: 600 });
    const short = store(cache, 'short.example', 5, 0)!;
    const long = store(cache, 'long.example', 86400, 0)!;
    expect(short.ttl).toBe(60);
    expect(long.ttl).toBe(600);
    expect(long.body.readUInt32BE(long.ttlOffsets[0])).toBe(600);
  });

  it('serves an expired entry only within the stale window', () => {
    const cache = new AnswerCache({ ...OPTS, staleMaxAgeMs: 10_000 });
    store(cache, 'stale.example', 10, 0);
    const within = get(cache, 'stale.example', 15_000);
    expect(within).toBeDefined();
    expect(15_000 < within!.expiresAt).toBe(false);
    expect(get(cache, 'stale.example', 20_001)).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
