// The query log on real SQLite files: the recorder's bounded buffer, batches written in one
// transaction with roll-ups that agree with the raw rows, paging, retention, the size cap,
// privacy settings, memory-only mode, the writer thread from the built package, and a server
// killed with SIGKILL under load.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/log.js';
import { VendorCatalog } from '../common/vendors.js';
import type { BlockDecision } from '../server/blocklist.js';
import type { Answer, Outcome, Query } from '../server/pipeline/types.js';
import { OUTCOME_CODE } from '../server/querylog/codes.js';
import { DESIGN_RATE, QUERYLOG_FILE, QueryLog, queueRows, type QueryLogOptions } from '../server/querylog/querylog.js';
import { MinuteRate } from '../server/querylog/rate.js';
import { OpeningRecorder } from '../server/opening-recorder.js';
import { BatchStrings, Recorder, truncateAddress } from '../server/querylog/recorder.js';
import { planWindow } from '../server/querylog/rollups.js';
import { HOUR_MS, keyOf, QueryLogStore } from '../server/querylog/store.js';
import type { Batch } from '../server/querylog/types.js';
import type { ParsedQuery } from '../server/wire/query.js';
import { request } from 'undici';
import { startChildServer, type ChildServer } from './helpers/child-server.js';
import { addressesOf, makeQuery, udpExchange } from './helpers/dns-client.js';
import { startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.js';
import { compileLists, tempDir } from './helpers/server.js';

const ROOT = resolve(import.meta.dirname, '..');
const catalog = VendorCatalog.load();
const quiet = createLogger('error');

function query(name: string, client = '192.168.1.10', opts: { qtype?: number; protocol?: 'udp' | 'tcp' } = {}): Query {
  const q: ParsedQuery = { id: 1, flags: 0x0100, opcode: 0, rd: true, cd: false, ad: false, name, qtype: opts.qtype ?? 1, qclass: 1, questionEnd: 0, edns: null };
  return { msg: Buffer.alloc(0), q, client: { address: client, port: 5353, family: client.includes(':') ? 6 : 4 }, protocol: opts.protocol ?? 'udp', receivedAt: 0 };
}

function answer(outcome: Outcome, reason: string, extra: Partial<Answer> = {}): Answer {
  return { wire: Buffer.alloc(0), outcome, reason, rcode: 0, ...extra };
}

const blockedAnswer = (rule: string, list: string) => answer('blocked', `||${rule}^ (${list})`, { vendor: null });

function openStore(dir: string, opts: { retentionMs?: number; maxBytes?: number } = {}): QueryLogStore {
  return QueryLogStore.open({ path: join(dir, QUERYLOG_FILE), retentionMs: opts.retentionMs ?? 7 * 86_400_000, maxBytes: opts.maxBytes ?? 256 * 1024 * 1024, catalog });
}

/** A recorder with nothing excluded or anonymised unless asked. */
function recorder(capacity: number, over: Partial<ConstructorParameters<typeof Recorder>[0]> = {}): Recorder {
  return new Recorder({ capacity, anonymise: 'off', excludeClients: [], excludeNames: [], ...over });
}

function logOptions(dataDir: string, over: Partial<QueryLogOptions> = {}): QueryLogOptions {
  return {
    mode: 'disk',
    dataDir,
    retentionMs: 7 * 86_400_000,
    maxBytes: 64 * 1024 * 1024,
    flushIntervalMs: 60_000,
    capacity: 10_000,
    anonymise: 'off',
    excludeClients: [],
    excludeNames: [],
    catalog,
    log: quiet,
    backend: 'inline',
    maintainIntervalMs: 3_600_000,
    ...over,
  };
}

/** A deterministic stream of varied queries (names, clients, outcomes, vendors). */
function fill(rec: Recorder, n: number, seed = 1): void {
  // mulberry32: small, seeded, with good low bits.
  let x = seed >>> 0;
  const rnd = (m: number) => {
    x = (x + 0x6d2b79f5) >>> 0;
    let t = x;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) % m;
  };
  const names = ['www.example.org', 'tracking.miui.com', 'api.example.com', 'ads.example.net', 'data.mistat.xiaomi.com', 'cdn.example.org', 'graph.facebook.com'];
  const outcomes: Outcome[] = ['forwarded', 'cached', 'blocked', 'blocked', 'cached', 'local', 'servfail', 'refused'];
  for (let i = 0; i < n; i++) {
    const name = names[rnd(names.length)];
    const client = `192.168.1.${10 + rnd(5)}`;
    const outcome = outcomes[rnd(outcomes.length)];
    const a = outcome === 'blocked' ? blockedAnswer(name, rnd(2) ? 'list-a' : 'list-b') : answer(outcome, outcome === 'forwarded' ? 'upstream udp://192.0.2.53:53' : outcome, outcome === 'forwarded' ? { upstream: 'udp://192.0.2.53:53' } : {});
    rec.record(query(name, client, { protocol: rnd(4) === 0 ? 'tcp' : 'udp', qtype: rnd(3) === 0 ? 28 : 1 }), a, rnd(50) / 10);
  }
}

function shiftTime(b: Batch, ms: number): Batch {
  for (let i = 0; i < b.n; i++) b.time[i] += ms;
  return b;
}

describe('the recorder (DNS thread side)', () => {
  it('drops and counts queries once its buffer is full, and never throws', () => {
    const rec = recorder(10);
    for (let i = 0; i < 15; i++) rec.record(query(`n${i}.example.org`), answer('forwarded', 'upstream x'), 1);
    expect(rec.length).toBe(10);
    expect(rec.dropped).toBe(5);
    const b = rec.cut();
    expect(b.n).toBe(10);
    expect(rec.length).toBe(0);
    rec.record(query('after.example.org'), answer('cached', 'cache'), 1);
    expect(rec.length).toBe(1);
  });

  it('grows its buffer for a burst and gives the memory back after a few quiet batches', () => {
    const rec = recorder(100_000);
    expect(rec.allocatedRows).toBe(4096);
    for (let i = 0; i < 20_000; i++) rec.record(query('burst.example.org'), answer('cached', 'cache'), 1);
    expect(rec.length).toBe(20_000);
    expect(rec.dropped).toBe(0);
    expect(rec.allocatedRows).toBe(32_768);
    const burst = rec.cut();
    expect(burst.n).toBe(20_000);
    expect(burst.time[19_999]).toBeGreaterThan(0);
    // A batch using a quarter of the buffer or more keeps it.
    for (let k = 0; k < 6; k++) {
      for (let i = 0; i < 8192; i++) rec.record(query('busy.example.org'), answer('cached', 'cache'), 1);
      rec.cut();
    }
    expect(rec.allocatedRows).toBe(32_768);
    const quietCut = () => {
      for (let i = 0; i < 10; i++) rec.record(query('quiet.example.org'), answer('cached', 'cache'), 1);
      return rec.cut();
    };
    for (let k = 0; k < 3; k++) quietCut();
    expect(rec.allocatedRows).toBe(32_768);
    quietCut();
    expect(rec.allocatedRows).toBe(16_384);
    for (let k = 0; k < 20; k++) quietCut();
    expect(rec.allocatedRows).toBe(4096);
    // Rows after a shrink are recorded and cut as before.
    const after = quietCut();
    expect(after.n).toBe(10);
    expect(after.time[9]).toBeGreaterThan(0);
    // And it grows again for the next burst.
    for (let i = 0; i < 5000; i++) rec.record(query('burst.example.org'), answer('cached', 'cache'), 1);
    expect(rec.allocatedRows).toBe(8192);
    expect(rec.cut().n).toBe(5000);
  });

  it('holds at most twice maxStrings new strings in one batch: a flood of new names is dropped and counted beyond that', () => {
    const rec = recorder(10_000, { maxStrings: 100 });
    let full = -1;
    for (let i = 0; i < 500; i++) {
      rec.record(query(`n${i}.example.org`), answer('forwarded', 'upstream x'), 1);
      if (full < 0 && rec.stringsFull) full = i;
    }
    // The client and the reason are two strings, then one per name.
    expect(full).toBe(97);
    expect(rec.length).toBe(198);
    expect(rec.dropped).toBe(500 - 198);
    const b = rec.cut();
    expect(b.strings.texts).toHaveLength(200);
    expect(rec.stringsFull).toBe(false);
    // The table starts over after the cut: the next batch takes new names again.
    rec.record(query('after.example.org'), answer('forwarded', 'upstream x'), 1);
    expect(rec.length).toBe(1);
  });

  it('sends each distinct string once: later batches refer to it by id', () => {
    const rec = recorder(100);
    for (let i = 0; i < 5; i++) rec.record(query('same.example.org'), answer('cached', 'cache'), 1);
    const first = rec.cut();
    expect(first.strings.texts).toEqual(['192.168.1.10', 'same.example.org', 'cache']);
    rec.record(query('same.example.org'), answer('cached', 'cache'), 1);
    const second = rec.cut();
    expect(second.strings.texts).toEqual([]);
    expect(second.name[0]).toBe(first.name[0]);
  });

  it('leaves excluded clients and names out of the log', () => {
    const rec = new Recorder({ capacity: 100, anonymise: 'off', excludeClients: ['192.168.1.50', '10.0.0.0/8'], excludeNames: ['private.example.org', '=exact.example.net'] });
    rec.record(query('a.example.org', '192.168.1.50'), answer('cached', 'cache'), 1);
    rec.record(query('a.example.org', '10.1.2.3'), answer('cached', 'cache'), 1);
    rec.record(query('deep.private.example.org'), answer('cached', 'cache'), 1);
    rec.record(query('exact.example.net'), answer('cached', 'cache'), 1);
    rec.record(query('sub.exact.example.net'), answer('cached', 'cache'), 1);
    rec.record(query('kept.example.org', '192.168.1.51'), answer('cached', 'cache'), 1);
    expect(rec.excluded).toBe(4);
    const b = rec.cut();
    expect(b.n).toBe(2);
    expect(b.strings.texts).toContain('sub.exact.example.net');
    expect(b.strings.texts).not.toContain('deep.private.example.org');
  });

  it('anonymises clients: truncation keeps the network, hashing keeps devices apart without the address', () => {
    expect(truncateAddress('192.168.1.77')).toBe('192.168.1.0/24');
    expect(truncateAddress('2001:db8:1234:5678:9abc::1')).toBe('2001:db8:1234:5600::/56');
    expect(truncateAddress('::ffff:10.1.2.3')).toBe('10.1.2.0/24');
    const rec = new Recorder({ capacity: 100, anonymise: 'hash', excludeClients: [], excludeNames: [] });
    rec.record(query('a.example.org', '192.168.1.77'), answer('cached', 'cache'), 1);
    rec.record(query('a.example.org', '192.168.1.78'), answer('cached', 'cache'), 1);
    rec.record(query('a.example.org', '192.168.1.77'), answer('cached', 'cache'), 1);
    const b = rec.cut();
    const clients = b.strings.texts.filter((t) => t.startsWith('client-'));
    expect(clients).toHaveLength(2);
    expect(b.strings.texts.join(' ')).not.toMatch(/192\.168/);
    expect(b.client[0]).toBe(b.client[2]);
  });

  it('asks once which rule and lists a new block reason stands for, CNAME blocks included', () => {
    const asked: string[] = [];
    const describeBlock = (name: string): BlockDecision => {
      asked.push(name);
      return { action: 'block', vendor: null, sources: ['list-a', 'list-b'], reason: `||${name}^ (list-a, list-b)` };
    };
    const rec = recorder(100, { describeBlock });
    for (let i = 0; i < 3; i++) rec.record(query('t.example.org'), answer('blocked', '||t.example.org^ (list-a, list-b)'), 1);
    rec.record(query('shop.example.com'), answer('blocked', 'CNAME x.tracker.example.net: ||x.tracker.example.net^ (list-a, list-b)'), 1);
    expect(asked).toEqual(['t.example.org', 'x.tracker.example.net']);
    const b = rec.cut();
    expect(b.reasons.map((r) => r.lists)).toEqual([
      ['list-a', 'list-b'],
      ['list-a', 'list-b'],
    ]);
  });
});

describe('the store (SQLite file)', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('hushdns-querylog-');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a batch in one transaction with roll-ups that agree with the raw rows', () => {
    const sub = join(dir, 'rollups');
    rmSync(sub, { recursive: true, force: true });
    execFileSync('mkdir', ['-p', sub]);
    const store = openStore(sub);
    const rec = recorder(5000, { describeBlock: (name) => ({ action: 'block', vendor: null, sources: ['list-a'], reason: `||${name}^ (list-a)` }) });
    fill(rec, 3000);
    store.write(rec.cut());
    fill(rec, 2000, 7);
    store.write(rec.cut());
    const now = Date.now();
    const summary = store.summary({ since: now - HOUR_MS * 2, until: now + 1000, topVendors: 10 });
    const devices = store.devices({ since: now - HOUR_MS * 2, until: now + 1000 });
    store.close();

    const db = new Database(join(sub, QUERYLOG_FILE), { readonly: true });
    const raw = db.prepare('SELECT flags & 7 AS outcome, count(*) AS n FROM q GROUP BY outcome').all() as { outcome: number; n: number }[];
    const perClient = db.prepare('SELECT s AS client, count(*) AS n FROM q JOIN str ON str.id = q.client GROUP BY client').all() as { client: string; n: number }[];
    const xiaomi = db.prepare("SELECT count(*) FROM q JOIN str ON str.id = q.vendor WHERE str.s = 'xiaomi'").pluck().get() as number;
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();

    expect(summary.total).toBe(5000);
    expect(raw.reduce((s, r) => s + r.n, 0)).toBe(5000);
    for (const r of raw) expect(summary.byOutcome[Object.keys(OUTCOME_CODE)[r.outcome] as Outcome], `outcome ${r.outcome}`).toBe(r.n);
    expect(summary.blocked).toBe(raw.find((r) => r.outcome === OUTCOME_CODE.blocked)!.n);
    for (const c of perClient) expect(devices.find((d) => d.client === c.client)?.total, c.client).toBe(c.n);
    // Names of the Xiaomi catalogue are attributed to the vendor even when the answer named none.
    expect(xiaomi).toBeGreaterThan(0);
    const xiaomiInRollups = devices.flatMap((d) => d.vendors).filter((v) => v.vendor === 'xiaomi');
    expect(xiaomiInRollups.length).toBeGreaterThan(0);
    expect(summary.topVendors.map((v) => v.vendor)).toContain('xiaomi');
  });

  it('counts blocks per rule and per source list', () => {
    const sub = join(dir, 'hits');
    execFileSync('mkdir', ['-p', sub]);
    const store = openStore(sub);
    const rec = recorder(100, { describeBlock: (name) => ({ action: 'block', vendor: null, sources: name.includes('ads') ? ['ads-list', 'big-list'] : ['big-list'], reason: `||${name}^ (${name.includes('ads') ? 'ads-list, big-list' : 'big-list'})` }) });
    for (let i = 0; i < 3; i++) rec.record(query('ads.example.org'), answer('blocked', '||ads.example.org^ (ads-list, big-list)'), 1);
    for (let i = 0; i < 2; i++) rec.record(query('t.example.net'), answer('blocked', '||t.example.net^ (big-list)'), 1);
    rec.record(query('ok.example.org'), answer('forwarded', 'upstream x'), 1);
    store.write(rec.cut());
    const w = { since: Date.now() - HOUR_MS, until: Date.now() + 1000 };
    expect(Object.fromEntries(store.listHits(w).map((h) => [h.list, h.total]))).toEqual({ 'ads-list': { blocked: 3, allowed: 0 }, 'big-list': { blocked: 5, allowed: 0 } });
    const top = store.top({ ...w, kind: 'blocked', limit: 10 });
    expect(top[0]).toMatchObject({ key: 'ads.example.org', count: 3, rule: '||ads.example.org^ (ads-list, big-list)', lists: ['ads-list', 'big-list'] });
    expect(store.top({ ...w, kind: 'lists', limit: 10 })).toEqual([
      { key: 'big-list', count: 5, blocked: 5, allowed: 0 },
      { key: 'ads-list', count: 3, blocked: 3, allowed: 0 },
    ]);
    expect(store.top({ ...w, kind: 'queried', limit: 10 }).map((e) => e.key)).toEqual(['ads.example.org', 't.example.net', 'ok.example.org']);
    store.close();
  });

  it('pages newest first through every row exactly once, with and without filters', () => {
    const sub = join(dir, 'paging');
    execFileSync('mkdir', ['-p', sub]);
    const store = openStore(sub);
    const rec = recorder(3000);
    fill(rec, 2500, 3);
    store.write(rec.cut());
    const w = { since: Date.now() - HOUR_MS, until: Date.now() + 1000 };
    const collect = (filter: { client?: string; name?: string; outcomes?: number[] }) => {
      const keys: number[] = [];
      let cursor: number | null = null;
      for (let pages = 0; pages < 100; pages++) {
        const p = store.page({ ...w, limit: 97, cursor, ...filter });
        keys.push(...p.rows.map((r) => r.key));
        for (const r of p.rows) {
          if (filter.client) expect(r.client).toBe(filter.client);
          if (filter.name) expect(r.name).toContain(filter.name);
        }
        if (p.next === null) break;
        cursor = p.next;
      }
      return keys;
    };
    const all = collect({});
    expect(all).toHaveLength(2500);
    expect(new Set(all).size).toBe(2500);
    expect([...all].sort((a, b) => b - a)).toEqual(all);
    const db = new Database(join(sub, QUERYLOG_FILE), { readonly: true });
    const count = (sql: string) => db.prepare(sql).pluck().get() as number;
    expect(collect({ client: '192.168.1.12' })).toHaveLength(count("SELECT count(*) FROM q JOIN str ON str.id = q.client WHERE s = '192.168.1.12'"));
    expect(collect({ name: 'miui' })).toHaveLength(count("SELECT count(*) FROM q JOIN str ON str.id = q.name WHERE s LIKE '%miui%'"));
    expect(collect({ outcomes: [OUTCOME_CODE.blocked] })).toHaveLength(count(`SELECT count(*) FROM q WHERE flags & 7 = ${OUTCOME_CODE.blocked}`));
    db.close();
    store.close();
  });

  it('prunes rows and roll-ups older than the retention', () => {
    const sub = join(dir, 'retention');
    execFileSync('mkdir', ['-p', sub]);
    const store = openStore(sub, { retentionMs: 2 * HOUR_MS });
    const rec = recorder(1000);
    fill(rec, 300);
    store.write(shiftTime(rec.cut(), -5 * HOUR_MS));
    fill(rec, 200, 5);
    store.write(rec.cut());
    const now = Date.now();
    expect(store.summary({ since: now - 10 * HOUR_MS, until: now + 1000, topVendors: 5 }).total).toBe(500);
    const r = store.maintain(now);
    expect(r.deletedRows).toBe(300);
    expect(store.size({}).rows).toBe(200);
    expect(store.summary({ since: now - 10 * HOUR_MS, until: now + 1000, topVendors: 5 }).total).toBe(200);
    expect(store.size({}).oldest).toBeGreaterThan(now - HOUR_MS);
    store.close();
  });

  it('keeps the file under its size cap by dropping the oldest hours first', () => {
    const sub = join(dir, 'size');
    execFileSync('mkdir', ['-p', sub]);
    const cap = 2 * 1024 * 1024;
    const store = openStore(sub, { maxBytes: cap });
    const rec = recorder(20_000);
    for (let h = 30; h >= 0; h--) {
      for (let i = 0; i < 2000; i++) rec.record(query(`host-${h}-${i % 400}.example.org`, `192.168.1.${i % 50}`), answer('forwarded', 'upstream udp://192.0.2.53:53'), 1);
      store.write(shiftTime(rec.cut(), -h * HOUR_MS));
    }
    expect(store.size({}).bytes).toBeGreaterThan(cap);
    const r = store.maintain();
    expect(r.deletedRows).toBeGreaterThan(0);
    expect(store.size({}).bytes).toBeLessThanOrEqual(cap);
    const oldest = store.size({}).oldest!;
    expect(oldest).toBeGreaterThan(Date.now() - 30 * HOUR_MS);
    // The newest hour survives whole.
    const now = Date.now();
    expect(store.page({ since: now - HOUR_MS / 2, until: now + 1000, limit: 1000, cursor: null }).rows.length).toBeGreaterThan(0);
    store.close();
    expect(statSync(join(sub, QUERYLOG_FILE)).size).toBeLessThanOrEqual(cap);
  });

  it('under a small size cap keeps the newest hours and reclaims the strings of the dropped ones (many distinct names)', () => {
    const sub = join(dir, 'size-distinct');
    execFileSync('mkdir', ['-p', sub]);
    const cap = 2 * 1024 * 1024;
    const store = openStore(sub, { maxBytes: cap });
    const rec = recorder(20_000);
    for (let h = 5; h >= 0; h--) {
      for (let i = 0; i < 10_000; i++) rec.record(query(`h${h}-n${i}.example.org`, `192.168.1.${i % 20}`), answer('forwarded', 'upstream udp://192.0.2.53:53', { upstream: 'udp://192.0.2.53:53' }), 1);
      store.write(shiftTime(rec.cut(), -h * HOUR_MS));
    }
    expect(store.size({}).bytes).toBeGreaterThan(cap);
    const r = store.maintain();
    expect(r.overCap).toBe(false);
    expect(r.deletedStrings).toBeGreaterThan(10_000);
    const now = Date.now();
    const w = { since: now - 8 * HOUR_MS, until: now + 1000 };
    // Some history goes, never all of it: the newest hour is whole, in the log and in the statistics.
    const s = store.summary({ ...w, topVendors: 5 });
    expect(s.total).toBeGreaterThanOrEqual(10_000);
    expect(s.total).toBeLessThan(60_000);
    expect(store.top({ ...w, kind: 'queried', limit: 1 })[0].key).toMatch(/^h\d-n\d+\.example\.org$/);
    const newest = store.page({ since: now - HOUR_MS / 2, until: now + 1000, limit: 1000, cursor: null });
    expect(newest.rows).toHaveLength(1000);
    expect(newest.rows[0].name).toBe('h0-n9999.example.org');

    // A name whose string went with its hour comes back when it is queried again, though the
    // recorder sends its text only once.
    rec.record(query('h5-n7.example.org'), answer('cached', 'cache'), 1);
    store.write(rec.cut());
    expect(store.page({ since: now - HOUR_MS, until: Date.now() + 1000, limit: 1, cursor: null, name: 'h5-n7.' }).rows.map((x) => x.name)).toEqual(['h5-n7.example.org']);
    store.close();

    expect(statSync(join(sub, QUERYLOG_FILE)).size).toBeLessThanOrEqual(cap);
    const db = new Database(join(sub, QUERYLOG_FILE), { readonly: true });
    const count = (sql: string) => db.prepare(sql).pluck().get() as number;
    expect(count("SELECT count(*) FROM str WHERE s LIKE 'h5-%'")).toBe(1);
    // Nothing kept refers to a string that went.
    expect(count('SELECT count(*) FROM q WHERE name NOT IN (SELECT id FROM str) OR client NOT IN (SELECT id FROM str)')).toBe(0);
    for (const t of ['h_name', 'd_name']) expect(count(`SELECT count(*) FROM ${t} WHERE name NOT IN (SELECT id FROM str)`), t).toBe(0);
    expect(count('SELECT count(*) FROM h_cube WHERE client NOT IN (SELECT id FROM str)')).toBe(0);
    db.close();
  });

  it('finds every row whose name contains the text, however many names match', () => {
    const sub = join(dir, 'name-filter');
    execFileSync('mkdir', ['-p', sub]);
    const store = openStore(sub);
    const rec = recorder(20_000);
    for (let i = 0; i < 10_000; i++) {
      const name = i % 5 === 4 ? `other${i}.example.net` : `shop${i}.match.example`;
      rec.record(query(name), answer('cached', 'cache'), 1);
    }
    store.write(rec.cut());
    const w = { since: Date.now() - HOUR_MS, until: Date.now() + 1000 };
    const names: string[] = [];
    let cursor: number | null = null;
    for (let pages = 0; pages < 50; pages++) {
      const p = store.page({ ...w, limit: 1000, cursor, name: 'match.example' });
      names.push(...p.rows.map((r) => r.name));
      if (p.next === null) break;
      cursor = p.next;
    }
    expect(names).toHaveLength(8000);
    expect(new Set(names).size).toBe(8000);
    expect(names.every((n) => n.endsWith('.match.example'))).toBe(true);
    store.close();
  });

  it('counts the answers allow rules let through, per rule and per list, apart from blocks', () => {
    const sub = join(dir, 'allow-hits');
    execFileSync('mkdir', ['-p', sub]);
    const store = openStore(sub);
    const rec = recorder(100, { describeBlock: (name) => ({ action: 'block', vendor: null, sources: ['big-list'], reason: `||${name}^ (big-list)` }) });
    const listAllow = { reason: '@@||ok.example.org^ (allow-list)', sources: ['allow-list'] };
    const userAllow = { reason: '@@||t.example.net^ (user-allow)', sources: ['user-allow'] };
    for (let i = 0; i < 3; i++) rec.record(query('cdn.ok.example.org'), answer('forwarded', 'upstream udp://192.0.2.53:53', { upstream: 'udp://192.0.2.53:53', allowedBy: listAllow }), 1);
    for (let i = 0; i < 2; i++) rec.record(query('t.example.net'), answer('cached', 'cache', { allowedBy: userAllow }), 1);
    rec.record(query('ads.example.com'), answer('blocked', '||ads.example.com^ (big-list)'), 1);
    rec.record(query('plain.example.com'), answer('cached', 'cache'), 1);
    store.write(rec.cut());
    const w = { since: Date.now() - HOUR_MS, until: Date.now() + 1000 };
    const hits = Object.fromEntries(store.listHits(w).map((h) => [h.list, h.total]));
    expect(hits).toEqual({ 'allow-list': { blocked: 0, allowed: 3 }, 'user-allow': { blocked: 0, allowed: 2 }, 'big-list': { blocked: 1, allowed: 0 } });
    expect(store.top({ ...w, kind: 'rules', limit: 10 })).toEqual([
      { key: listAllow.reason, count: 3, blocked: 0, allowed: 3 },
      { key: userAllow.reason, count: 2, blocked: 0, allowed: 2 },
      { key: '||ads.example.com^ (big-list)', count: 1, blocked: 1, allowed: 0 },
    ]);
    expect(store.ruleHits({ ...w, rules: [userAllow.reason, '@@||never.example^ (user-allow)'] })).toEqual([
      { rule: userAllow.reason, total: { blocked: 0, allowed: 2 }, window: { blocked: 0, allowed: 2 } },
      { rule: '@@||never.example^ (user-allow)', total: { blocked: 0, allowed: 0 }, window: { blocked: 0, allowed: 0 } },
    ]);
    // The log row says which rule let it through; the upstream keeps its own column.
    const row = store.page({ ...w, limit: 10, cursor: null, name: 'cdn.ok' }).rows[0];
    expect(row).toMatchObject({ outcome: 'forwarded', reason: listAllow.reason, upstream: 'udp://192.0.2.53:53' });
    store.close();
  });

  it('breaks every window down by client × vendor × outcome exactly as the raw rows do, across hours, days and retention', () => {
    const sub = join(dir, 'tiers');
    execFileSync('mkdir', ['-p', sub]);
    const now = Date.now();
    let store = openStore(sub, { retentionMs: 30 * 86_400_000 });
    const rec = recorder(1000, { describeBlock: (name) => ({ action: 'block', vendor: null, sources: ['list-a'], reason: `||${name}^ (list-a)` }) });
    // Ten days of hours, some empty, oldest first (keys only grow).
    for (let h = 10 * 24; h >= 0; h--) {
      if (h % 7 === 3) continue;
      fill(rec, 20 + (h % 13), h + 1);
      store.write(shiftTime(rec.cut(), -h * HOUR_MS));
    }
    const file = join(sub, QUERYLOG_FILE);
    const hourNow = Math.floor(now / HOUR_MS);
    /** The store's answers against SQL over the raw rows of the same whole hours. */
    const check = (label: string, h0: number, h1: number) => {
      const w = { since: h0 * HOUR_MS, until: h1 * HOUR_MS };
      const raw = new Database(file, { readonly: true });
      const range = [keyOf(w.since), keyOf(w.until)];
      const cube = raw
        .prepare('SELECT c.s AS client, coalesce(v.s, \'\') AS vendor, flags & 7 AS outcome, count(*) AS n FROM q JOIN str c ON c.id = q.client LEFT JOIN str v ON v.id = q.vendor WHERE q.id >= ? AND q.id < ? GROUP BY 1, 2, 3')
        .all(...range) as { client: string; vendor: string; outcome: number; n: number }[];
      const names = raw.prepare('SELECT n.s AS name, count(*) AS n FROM q JOIN str n ON n.id = q.name WHERE q.id >= ? AND q.id < ? GROUP BY 1').all(...range) as { name: string; n: number }[];
      raw.close();
      const outcomeName = (o: number) => Object.keys(OUTCOME_CODE)[o] as Outcome;
      const expected = new Map<string, number>();
      for (const r of cube) {
        const k = `${r.client}|${outcomeName(r.outcome)}`;
        expected.set(k, (expected.get(k) ?? 0) + r.n);
        if (r.vendor) expected.set(`${r.client}|${r.vendor}|${outcomeName(r.outcome)}`, r.n);
      }
      const got = new Map<string, number>();
      for (const d of store.devices(w)) {
        for (const [o, n] of Object.entries(d.byOutcome)) got.set(`${d.client}|${o}`, n);
        for (const v of d.vendors) for (const [o, n] of Object.entries(v.byOutcome)) got.set(`${d.client}|${v.vendor}|${o}`, n);
      }
      expect(Object.fromEntries(got), label).toEqual(Object.fromEntries(expected));
      const top = store.top({ ...w, kind: 'queried', limit: 500 });
      expect(Object.fromEntries(top.map((e) => [e.key, e.count])), label).toEqual(Object.fromEntries(names.map((r) => [r.name, r.n])));
      expect(store.summary({ ...w, topVendors: 50 }).total, label).toBe(cube.reduce((a, r) => a + r.n, 0));
    };
    let seed = 99;
    const rnd = (m: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 8) % m;
    };
    const randomWindows: [string, number, number][] = Array.from({ length: 30 }, (_, i) => {
      const a = hourNow - rnd(11 * 24);
      const b = Math.min(hourNow + 1, a + 1 + rnd(6 * 24));
      return [`random window ${i} [${a - hourNow}, ${b - hourNow}) h`, a, b];
    });
    const windows = (): [string, number, number][] => [
      ['7 days to now', hourNow - 7 * 24, hourNow + 1],
      ['24 hours to now', hourNow - 23, hourNow + 1],
      ['everything', hourNow - 12 * 24, hourNow + 1],
      ['a past day and a half', hourNow - 100, hourNow - 64],
      ['one past hour', hourNow - 50, hourNow - 49],
      ['days ending in the past', hourNow - 9 * 24 + 5, hourNow - 2 * 24 - 7],
      ...randomWindows,
    ];
    // Whole days come from the daily tier, a cut day from its bucket minus the hours outside the
    // window when that reads less: a 7-day window reads a few hours, not 168.
    const hoursRead = (p: ReturnType<typeof planWindow>) => [...p.ranges, ...p.minus].reduce((a, [x, y]) => a + y - x, 0);
    const tiers = { floor: hourNow - 10 * 24, folded: hourNow, newest: hourNow };
    const week = planWindow(hourNow - 7 * 24, hourNow + 1, tiers);
    expect(week.days.length).toBeGreaterThanOrEqual(6);
    expect(hoursRead(week)).toBeLessThanOrEqual(13);
    expect(hoursRead(planWindow(hourNow - 23, hourNow + 1, tiers))).toBeLessThanOrEqual(13);
    // The windows below take every path: hourly only, whole days, and days minus hours.
    const plans = windows().map(([, a, b]) => planWindow(a, b, tiers));
    expect(plans.filter((p) => p.minus.length > 0).length).toBeGreaterThanOrEqual(5);
    expect(plans.filter((p) => p.days.length > 0 && p.minus.length === 0).length).toBeGreaterThanOrEqual(3);
    expect(plans.filter((p) => p.days.length === 0).length).toBeGreaterThanOrEqual(3);
    for (const [label, h0, h1] of windows()) check(label, h0, h1);

    // Retention that cuts a day in the middle: that day's bucket is rebuilt from the hours kept.
    store.close();
    let keep = 5 * 24 + 7;
    if ((hourNow - keep) % 24 === 0) keep++;
    store = openStore(sub, { retentionMs: keep * HOUR_MS });
    expect(store.maintain(now).deletedHours).toBeGreaterThan(0);
    for (const [label, h0, h1] of windows()) check(`${label}, after retention`, h0, h1);
    store.close();
  });

  it('moves an unreadable log aside and starts a new one', () => {
    const sub = join(dir, 'garbage');
    execFileSync('mkdir', ['-p', sub]);
    writeFileSync(join(sub, QUERYLOG_FILE), 'this is not a database, just bytes '.repeat(200));
    const store = openStore(sub);
    expect(store.setAside?.path).toMatch(/querylog\.sqlite\.unreadable-\d+$/);
    expect(existsSync(store.setAside!.path)).toBe(true);
    const rec = recorder(10);
    rec.record(query('a.example.org'), answer('cached', 'cache'), 1);
    store.write(rec.cut());
    expect(store.size({}).rows).toBe(1);
    store.close();
  });
});

describe('the query log (timer, buffer, modes)', () => {
  it('writes at most one batch per flush interval under steady load', async () => {
    const dataDir = tempDir();
    const log = await QueryLog.open(logOptions(dataDir, { flushIntervalMs: 250 }));
    const started = Date.now();
    let sent = 0;
    while (Date.now() - started < 1300) {
      for (let i = 0; i < 50; i++) log.record(query(`n${sent++ % 300}.example.org`), answer('forwarded', 'upstream x'), 1);
      await new Promise((r) => setTimeout(r, 5));
    }
    const elapsed = Date.now() - started;
    const before = log.status();
    expect(before.dropped).toBe(0);
    expect(before.flushes).toBeGreaterThanOrEqual(3);
    expect(before.flushes).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 1);
    await log.close();
    expect(log.status().rowsWritten).toBe(sent);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('writes early (before the interval) only when the buffer is three quarters full, and drops beyond it', async () => {
    const dataDir = tempDir();
    const log = await QueryLog.open(logOptions(dataDir, { flushIntervalMs: 60_000, capacity: 1000 }));
    for (let i = 0; i < 700; i++) log.record(query('a.example.org'), answer('cached', 'cache'), 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(log.status().flushes).toBe(0);
    for (let i = 0; i < 100; i++) log.record(query('a.example.org'), answer('cached', 'cache'), 1);
    for (let i = 0; i < 50 && log.status().flushes === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(log.status().flushes).toBe(1);
    expect(log.status().rowsWritten).toBe(800);
    // More than the buffer holds in one turn of the event loop: the rest is dropped and counted.
    for (let i = 0; i < 1500; i++) log.record(query('b.example.org'), answer('cached', 'cache'), 1);
    expect(log.status().dropped).toBe(500);
    await log.close();
    expect(log.status().rowsWritten).toBe(1800);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('is sized from the flush interval by default (auto): one interval at the design rate, early writes only beyond it', () => {
    // The default 5 s holds one interval at the design rate with room to spare, and writes early only beyond it.
    expect(queueRows(0, 5000)).toBe(375_000);
    expect(queueRows(0, 5000) * 0.75).toBeGreaterThan(DESIGN_RATE * 5);
    // The sized buffer stays bounded for long intervals; a number set by hand is used as it is.
    expect(queueRows(0, 300_000)).toBe(1_000_000);
    expect(queueRows(2_000_000, 5000)).toBe(2_000_000);
    expect(queueRows(5000, 5000)).toBe(5000);
  });

  it('counts queries per minute in memory over the last five minutes', () => {
    const t0 = Date.UTC(2025, 0, 1, 12, 0, 0);
    const rate = new MinuteRate(t0 - 3_600_000);
    for (let m = 0; m < 10; m++) for (let i = 0; i < 100 * (m + 1); i++) rate.tick(t0 + m * 60_000 + i);
    // At 10:00 past the tenth minute's start, minutes 6–9 whole (700+800+900+1000), minute 5 (600) wholly inside.
    expect(rate.perMinute(t0 + 10 * 60_000)).toBe((600 + 700 + 800 + 900 + 1000) / 5);
    // Half a minute later: half of minute 5 has left the window.
    expect(rate.perMinute(t0 + 10 * 60_000 + 30_000)).toBe((300 + 700 + 800 + 900 + 1000) / 5);
    // Quiet for an hour: nothing left.
    expect(rate.perMinute(t0 + 70 * 60_000)).toBe(0);
    // Started two minutes ago: the rate is over two minutes, not five.
    const fresh = new MinuteRate(t0);
    for (let i = 0; i < 240; i++) fresh.tick(t0 + i * 500);
    expect(fresh.perMinute(t0 + 120_000)).toBe(120);
  });

  it('with a size cap smaller than one hour keeps that hour and says so once', async () => {
    const dataDir = tempDir();
    const lines: string[] = [];
    const log = await QueryLog.open(logOptions(dataDir, { maxBytes: 256 * 1024, log: createLogger('warn', {}, (l) => lines.push(l)) }));
    for (let i = 0; i < 10_000; i++) log.record(query(`only-${i}.example.org`), answer('cached', 'cache'), 1);
    await log.flush();
    await log.maintain();
    await log.maintain();
    expect(log.status().overCap).toBe(true);
    const now = Date.now();
    expect((await log.read('summary', { since: now - HOUR_MS, until: now + 1000, topVendors: 1 })).total).toBe(10_000);
    expect(lines.filter((l) => l.includes('still over querylog-max-size'))).toHaveLength(1);
    await log.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('takes the rows of a worker process and the queries it dropped or excluded (cluster mode), counted with its own', async () => {
    const dataDir = tempDir();
    const log = await QueryLog.open(logOptions(dataDir, { mode: 'memory', excludeNames: ['private.example.org'] }));
    log.record(query('private.example.org'), answer('cached', 'cache'), 1);
    const worker = recorder(10, { excludeNames: ['private.example.org'] });
    for (let i = 0; i < 12; i++) worker.record(query(`w${i}.example.org`), answer('forwarded', 'upstream x'), 1);
    worker.record(query('a.private.example.org'), answer('cached', 'cache'), 1);
    expect([worker.dropped, worker.excluded]).toEqual([2, 1]);
    const strings = new BatchStrings();
    log.ingest(worker.cut(), strings, { dropped: 2, excluded: 1 });
    // Counts alone, with no rows since the last batch.
    log.ingest(null, strings, { dropped: 0, excluded: 3 });
    expect(log.status()).toMatchObject({ queued: 10, dropped: 2, excluded: 5 });
    await log.flush();
    const now = Date.now();
    expect(await log.read('summary', { since: now - HOUR_MS, until: now + 1000, topVendors: 5 })).toMatchObject({ total: 10 });
    await log.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('in memory mode writes nothing to disk and still answers every read', async () => {
    const dataDir = tempDir();
    const log = await QueryLog.open(logOptions(dataDir, { mode: 'memory' }));
    for (let i = 0; i < 20; i++) log.record(query('tracking.miui.com', '192.168.1.5'), answer('blocked', '||miui.com^ (xiaomi)', { vendor: 'xiaomi' }), 1);
    await log.flush();
    const now = Date.now();
    const s = await log.read('summary', { since: now - HOUR_MS, until: now + 1000, topVendors: 5 });
    expect(s).toMatchObject({ total: 20, blocked: 20, clients: 1 });
    expect((await log.read('page', { since: now - HOUR_MS, until: now + 1000, limit: 5, cursor: null })).rows).toHaveLength(5);
    await log.close();
    expect(readdirSync(dataDir)).toEqual([]);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('holds the queries answered while the log opens and logs them once it is open (DNS does not wait for it)', async () => {
    const dataDir = tempDir();
    const lines: string[] = [];
    const rec = new OpeningRecorder(QueryLog.open(logOptions(dataDir)), createLogger('warn', {}, (l) => lines.push(l)));
    // The log is still opening (its file and store): these are held, not lost.
    for (let i = 0; i < 30; i++) rec.record(query(`early${i}.example.org`), answer('forwarded', 'upstream x'), 1);
    await rec.opened;
    rec.record(query('late.example.org'), answer('forwarded', 'upstream x'), 1);
    await rec.close();
    const db = new Database(join(dataDir, QUERYLOG_FILE), { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) FROM q').pluck().get()).toBe(31);
    } finally {
      db.close();
    }
    expect(lines).toEqual([]);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('writes a batch early when never-seen names fill its string table, instead of holding them for the interval', async () => {
    const dataDir = tempDir();
    const log = await QueryLog.open(logOptions(dataDir, { flushIntervalMs: 60_000, maxStrings: 100 }));
    for (let i = 0; i < 1000; i++) {
      log.record(query(`flood${i}.example.org`), answer('forwarded', 'upstream x'), 1);
      if (i % 20 === 19) await new Promise((r) => setImmediate(r));
    }
    await log.flush();
    const st = log.status();
    // 1000 names at most 100 new strings a batch: about ten batches long before the 60 s interval.
    expect(st.flushes).toBeGreaterThanOrEqual(8);
    expect(st.dropped).toBe(0);
    expect(st.rowsWritten).toBe(1000);
    await log.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('with the log off records nothing and says so on reads', async () => {
    const dataDir = tempDir();
    const log = await QueryLog.open(logOptions(dataDir, { mode: 'off' }));
    log.record(query('a.example.org'), answer('cached', 'cache'), 1);
    expect(log.status()).toMatchObject({ mode: 'off', queued: 0 });
    await expect(log.read('summary', { since: 0, until: 1, topVendors: 1 })).rejects.toThrow(/off/);
    await log.close();
    expect(readdirSync(dataDir)).toEqual([]);
  });
});

// ---- from the built package: the writer thread and the real CLI ---------------------------

const DIST_WORKER = join(ROOT, 'dist', 'server', 'querylog', 'worker.js');

/** True when every TypeScript source of the server has a compiled output at least as new. */
function distIsFresh(): boolean {
  const stale = (dir: string): boolean =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).some((e) => {
      const rel = join(dir, e.name);
      if (e.isDirectory()) return stale(rel);
      if (!e.name.endsWith('.ts')) return false;
      const out = join(ROOT, 'dist', rel.replace(/\.ts$/, '.js'));
      return !existsSync(out) || statSync(out).mtimeMs < statSync(join(ROOT, rel)).mtimeMs;
    });
  const cli = join(ROOT, 'dist', 'cli.js');
  return existsSync(cli) && statSync(cli).mtimeMs >= statSync(join(ROOT, 'cli.ts')).mtimeMs && !['common', 'server', 'compiler'].some(stale);
}
const DIST_CLI = join(ROOT, 'dist', 'cli.js');

describe('from the built package (dist/)', () => {
  let built = false;
  beforeAll(() => {
    // The writer thread and `hushdns serve` run compiled JavaScript. `npm test` builds first; when
    // a source is newer than its output (a run of this file alone), build what is in the tree now.
    if (!distIsFresh()) {
      try {
        execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
      } catch (err) {
        // Type errors elsewhere in the tree still emit JavaScript; only a missing output is fatal.
        if (!existsSync(DIST_WORKER) || !existsSync(DIST_CLI)) throw err;
      }
    }
    built = existsSync(DIST_WORKER) && existsSync(DIST_CLI);
  }, 180_000);

  it('the writer thread writes and reads like the inline store', async () => {
    expect(built).toBe(true);
    const dataDir = tempDir();
    const log = await QueryLog.open(logOptions(dataDir, { backend: 'worker', workerFile: DIST_WORKER, describeBlock: (n) => ({ action: 'block', vendor: null, sources: ['list-a'], reason: `||${n}^ (list-a)` }) }));
    expect(log.status().backend).toBe('worker');
    for (let i = 0; i < 500; i++) log.record(query(i % 2 ? 'ads.example.org' : 'www.example.org', `192.168.1.${i % 3}`), i % 2 ? answer('blocked', '||ads.example.org^ (list-a)') : answer('forwarded', 'upstream x'), 1);
    await log.flush();
    const now = Date.now();
    const w = { since: now - HOUR_MS, until: now + 1000 };
    expect(await log.read('summary', { ...w, topVendors: 3 })).toMatchObject({ total: 500, blocked: 250, clients: 3 });
    expect((await log.read('devices', w)).map((d) => d.total).sort()).toEqual([166, 167, 167]);
    expect(await log.read('listHits', w)).toEqual([{ list: 'list-a', total: { blocked: 250, allowed: 0 }, window: { blocked: 250, allowed: 0 } }]);
    await log.close();
    const db = new Database(join(dataDir, QUERYLOG_FILE), { readonly: true });
    expect(db.prepare('SELECT count(*) FROM q').pluck().get()).toBe(500);
    db.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it.skipIf(process.platform !== 'linux')('the writer thread runs at a lower priority than the thread that answers DNS', async () => {
    expect(built).toBe(true);
    const dataDir = tempDir();
    const log = await QueryLog.open(logOptions(dataDir, { backend: 'worker', workerFile: DIST_WORKER }));
    try {
      // Field 19 of /proc/PID/task/TID/stat is the nice value (after the parenthesised name).
      const niceOf = (tid: string) => Number(readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16]);
      const nices = readdirSync(`/proc/${process.pid}/task`).map(niceOf);
      expect(niceOf(String(process.pid)), 'this (the DNS) thread').toBe(0);
      expect(nices.filter((n) => n === 15), `thread nice values: ${nices.join(' ')}`).toHaveLength(1);
    } finally {
      await log.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('the writer thread keeps up with the design rate: one batch per interval, nothing dropped', async () => {
    expect(built).toBe(true);
    const dataDir = tempDir();
    const flushIntervalMs = 250;
    const log = await QueryLog.open(logOptions(dataDir, { flushIntervalMs, capacity: queueRows(0, flushIntervalMs), backend: 'worker', workerFile: DIST_WORKER }));
    const started = Date.now();
    let sent = 0;
    // DESIGN_RATE queries a second, recorded in slices every 20 ms as a busy event loop would.
    while (Date.now() - started < 1500) {
      const due = Math.floor(((Date.now() - started) / 1000) * DESIGN_RATE);
      while (sent < due) log.record(query(`n${sent++ % 5000}.example.org`, `192.168.1.${sent % 30}`), answer('cached', 'cache'), 1);
      await new Promise((r) => setTimeout(r, 20));
    }
    const elapsed = Date.now() - started;
    const st = log.status();
    expect(st.dropped).toBe(0);
    expect(st.flushes).toBeLessThanOrEqual(Math.ceil(elapsed / flushIntervalMs) + 1);
    await log.close();
    expect(log.status().rowsWritten).toBe(sent);
    rmSync(dataDir, { recursive: true, force: true });
  });

  describe('a server killed with SIGKILL under load', () => {
    let upstream: FakeUpstream;
    let child: ChildProcess | null = null;
    let dataDir: string;
    beforeAll(async () => {
      upstream = await startFakeUpstream();
      dataDir = tempDir();
      await compileLists(dataDir, { 'block.txt#domains': 'blocked.example.org\n' });
    });
    afterAll(async () => {
      child?.kill('SIGKILL');
      await upstream.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('leaves a log that passes integrity_check and misses at most the last batch', async () => {
      expect(built).toBe(true);
      const flushMs = 250;
      child = spawn(
        process.execPath,
        [DIST_CLI, 'serve', '--data-dir', dataDir, '--dns-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--upstream', `udp://127.0.0.1:${upstream.port}`, '--refresh-interval', '0', '--querylog-flush-interval', `${flushMs}ms`, '--rate-limit', '0', '--log-level', 'info'],
        { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HUSHDNS_CONFIG: '' } },
      );
      const port = await new Promise<number>((resolvePort, reject) => {
        let err = '';
        const timer = setTimeout(() => reject(new Error(`serve did not start within 20 s: ${err.slice(-500)}`)), 20_000);
        child!.stderr!.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /"msg":"hushdns is answering".*?"dns":\["127\.0\.0\.1:(\d+)"\]/.exec(err);
          if (m) {
            clearTimeout(timer);
            resolvePort(Number(m[1]));
          }
        });
        child!.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${err.slice(-500)}`)));
      });

      // Load: 64 queries in flight at all times for ~1.5 s; the time of every answer is kept.
      const answeredAt: number[] = [];
      let stop = false;
      let n = 0;
      const worker = async () => {
        while (!stop) {
          const name = n++ % 5 === 0 ? 'blocked.example.org' : `host${n % 500}.example.org`;
          try {
            await udpExchange('127.0.0.1', port, makeQuery(name, 'A'), 1000);
            answeredAt.push(Date.now());
          } catch {
            if (stop) return;
          }
        }
      };
      const workers = Array.from({ length: 64 }, worker);
      // Under load for at least a second and several batches, bounded in time on a slow machine.
      const loadStarted = Date.now();
      while (Date.now() - loadStarted < 15_000 && (Date.now() - loadStarted < 1000 || answeredAt.length < 600)) await new Promise((r) => setTimeout(r, 50));
      const killedAt = Date.now();
      child.kill('SIGKILL');
      stop = true;
      await Promise.all(workers);
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');

      const db = new Database(join(dataDir, QUERYLOG_FILE));
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const rows = db.prepare('SELECT count(*) FROM q').pluck().get() as number;
      const rolled = db.prepare('SELECT sum(n) FROM h_series').pluck().get() as number;
      db.close();
      const answered = answeredAt.length;
      const settled = answeredAt.filter((t) => t < killedAt - 4 * flushMs).length;
      expect(answered).toBeGreaterThan(100);
      // Every answer older than a few flush intervals is in the log; nothing is there twice or invented.
      expect(rows).toBeGreaterThanOrEqual(settled);
      expect(rows).toBeLessThanOrEqual(answered);
      // Raw rows and roll-ups were committed together.
      expect(rolled).toBe(rows);
    }, 60_000);
  });

  describe('a query log that cannot write', () => {
    const TOKEN = 'querylog-token-0123456789';
    let upstream: FakeUpstream;
    /** Every server a test started, stopped after it even when it fails half-way. */
    const started: ChildServer[] = [];
    beforeAll(async () => {
      upstream = await startFakeUpstream();
    });
    afterEach(async () => {
      for (const c of started.splice(0)) await c.stop('SIGKILL');
    });
    afterAll(async () => {
      await upstream.stop();
    });

    const health = async (c: ChildServer) => (await (await request(`http://127.0.0.1:${c.http.port}/api/health`)).body.json()) as { status: string; warnings: string[]; querylog: { failing: boolean; mode: string; rowsWritten: number; writeErrors: number } };
    const until = async <T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> => {
      const end = Date.now() + ms;
      for (;;) {
        const v = await read();
        if (ok(v)) return v;
        if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v).slice(0, 400)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const linesWith = (c: ChildServer, text: string) =>
      c.logs
        .join('')
        .split('\n')
        .filter((l) => l.includes(text));

    it('full (RLIMIT_FSIZE on the server process): one error line, a warning in /api/health, DNS answers, and logging resumes with the right names', async () => {
      expect(built).toBe(true);
      const c = await startChildServer({ lists: { 'block.txt#domains': 'blocked.example.org\n' }, upstreamPort: upstream.port, flags: ['--querylog-flush-interval', '200ms', '--rate-limit', '0', '--api-token', TOKEN] });
      started.push(c);
      const ask = (name: string) => udpExchange('127.0.0.1', c.dns.port, makeQuery(name, 'A'));
      await ask('before.example.org');
      await until('the first row', () => health(c), (h) => h.querylog.rowsWritten >= 1);

      // As if the disk were full: every write of the server past its first 4 KiB fails (EFBIG). The soft
      // limit only, so it can be lifted again without CAP_SYS_RESOURCE.
      execFileSync('prlimit', ['--pid', String(c.pid), '--fsize=4096:']);
      const during = Array.from({ length: 30 }, (_, i) => `during-${i}.example.org`);
      for (const name of during) expect(addressesOf(await ask(name))).toHaveLength(1);
      expect(addressesOf(await ask('blocked.example.org'))).toEqual(['0.0.0.0']);
      const failing = await until('a failing log', () => health(c), (h) => h.querylog.failing);
      expect(failing.status).toBe('degraded');
      expect(failing.warnings.join(' ')).toMatch(/query log cannot write: .*querylog\.sqlite/);
      // Several batches fail; the log says so once.
      for (let i = 0; i < 3; i++) {
        await ask(`still-failing-${i}.example.org`);
        await new Promise((r) => setTimeout(r, 250));
      }
      expect((await health(c)).querylog.writeErrors).toBeGreaterThanOrEqual(2);
      expect(linesWith(c, 'the query log cannot write')).toHaveLength(1);
      expect(linesWith(c, 'the query log cannot write')[0]).toMatch(/"level":"error"/);

      // Space again: the names first seen while failing are logged as themselves.
      execFileSync('prlimit', ['--pid', String(c.pid), '--fsize=unlimited:']);
      for (const name of during) await ask(name);
      await until('a healthy log', () => health(c), (h) => !h.querylog.failing && h.status === 'ok');
      expect(linesWith(c, 'the query log is writing again')).toHaveLength(1);
      const page = (await (await request(`http://127.0.0.1:${c.http.port}/api/querylog?name=during-&limit=100`)).body.json()) as { rows: { name: string }[] };
      expect(page.rows.map((r) => r.name).sort()).toEqual([...during].sort());
    }, 60_000);

    it('read-only data folder: the log says why once, /api/health warns, DNS answers', async (ctx) => {
      expect(built).toBe(true);
      const dataDir = tempDir();
      await compileLists(dataDir, { 'block.txt#domains': 'blocked.example.org\n' });
      // Root ignores permissions, not the immutable attribute (ext4); others get a plain chmod.
      const root = process.getuid?.() === 0;
      try {
        if (root) execFileSync('chattr', ['+i', dataDir], { stdio: 'pipe' });
        else chmodSync(dataDir, 0o555);
      } catch {
        rmSync(dataDir, { recursive: true, force: true });
        ctx.skip();
      }
      const undo = () => (root ? execFileSync('chattr', ['-i', dataDir]) : chmodSync(dataDir, 0o755));
      try {
        let writable = true;
        try {
          writeFileSync(join(dataDir, 'probe'), 'x');
        } catch {
          writable = false;
        }
        if (writable) {
          undo();
          ctx.skip();
        }
        const c = await startChildServer({ lists: {}, dataDir, upstreamPort: upstream.port, flags: ['--api-token', TOKEN, '--rate-limit', '0'] });
        started.push(c);
        expect(addressesOf(await udpExchange('127.0.0.1', c.dns.port, makeQuery('blocked.example.org', 'A')))).toEqual(['0.0.0.0']);
        expect(addressesOf(await udpExchange('127.0.0.1', c.dns.port, makeQuery('www.example.org', 'A')))).toHaveLength(1);
        const h = await health(c);
        expect(h.status).toBe('degraded');
        expect(h.querylog.mode).toBe('failed');
        expect(h.warnings.join(' ')).toMatch(/query log unavailable: the data folder .* is not writable \((EPERM|EACCES)\): .*querylog\.sqlite cannot be written/);
        const lines = linesWith(c, 'the query log cannot be opened');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/"level":"error"/);
        await c.stop();
      } finally {
        undo();
        rmSync(dataDir, { recursive: true, force: true });
      }
    }, 60_000);
  });
});
