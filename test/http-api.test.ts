// The HTTP API and /metrics of a real server: real DNS queries over loopback, then real HTTP
// requests (undici) reading what they left in the query log, and changes (allow, deny, pause)
// whose effect is checked over DNS again.
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import dns2 from 'dns2';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Devices, firstPtr, ptrName, readArpTable } from '../server/devices.js';
import { VendorCatalog } from '../common/vendors.js';
import { addressesOf, edeOf, makeQuery, rcodeOf, udpExchange } from './helpers/dns-client.js';
import { DEFAULT_A } from './helpers/fake-upstream.js';
import { startTestServer, tempDir, type TestServer } from './helpers/server.js';

const TOKEN = 'test-token-0123456789abcdef';
const LISTS = {
  'trackers.txt#hosts': '0.0.0.0 tracking.example.com\n0.0.0.0 metrics.example.net\n',
  'ads.txt#adblock': '||ads.example.org^\n',
};

interface Json {
  [k: string]: unknown;
}

async function http(t: TestServer, path: string, opts: { method?: 'GET' | 'POST' | 'HEAD'; token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await request(`http://127.0.0.1:${t.http.port}${path}`, { method: opts.method ?? (body !== undefined ? 'POST' : 'GET'), headers, body });
  const text = await res.body.text();
  let json: Json = {};
  try {
    json = JSON.parse(text) as Json;
  } catch {
    // /metrics and the dashboard are not JSON.
  }
  return { status: res.statusCode, headers: res.headers, json, text };
}

const ask = (t: TestServer, name: string, type = 'A') => udpExchange('127.0.0.1', t.udp4.port, makeQuery(name, type));
const ask6 = (t: TestServer, name: string, type = 'A') => udpExchange('::1', t.udp6!.port, makeQuery(name, type));

describe('the HTTP API over a real server', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer({
      lists: LISTS,
      flags: { 'api-token': TOKEN, 'querylog-flush-interval': '200ms', 'default-sources': false, bundled: false },
      config: { devices: { '127.0.0.1': 'Living room TV', '::1': 'Laptop' } },
    });
    for (let i = 0; i < 3; i++) await ask(t, 'tracking.example.com');
    await ask(t, 'ads.example.org');
    await ask(t, 'www.example.org');
    await ask(t, 'tracking.miui.com');
    await ask(t, 'data.mistat.xiaomi.com');
    await ask6(t, 'metrics.example.net');
    await t.server.querylog.flush();
  });
  afterAll(async () => {
    await t?.stop();
  });

  describe('reading', () => {
    it('/api/summary counts queries, the blocked share and top vendors', async () => {
      const r = await http(t, '/api/summary');
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ total: 8, blocked: 5, allowed: 3, clients: 2, blockedShare: 0.625 });
      expect((r.json.byOutcome as Json).blocked).toBe(5);
      const vendors = r.json.topVendors as { vendor: string; name: string; allowed: number }[];
      expect(vendors.find((v) => v.vendor === 'xiaomi')).toMatchObject({ name: expect.stringContaining('Xiaomi'), allowed: 2 });
      const series = r.json.series as { hour: string; blocked: number; allowed: number }[];
      expect(series.length).toBeGreaterThanOrEqual(24);
      expect(series.reduce((s, p) => s + p.blocked, 0)).toBe(5);
      expect(r.json.recentPerMinute).toBeGreaterThan(0);
    });

    it('/api/devices names devices from the config and infers their kind from the vendors they talk to', async () => {
      const r = await http(t, '/api/devices');
      expect(r.status).toBe(200);
      const devices = r.json.devices as { client: string; name: string; nameFrom: string; kind: string | null; total: number; blocked: number; vendors: { vendor: string; allowed: number; byOutcome: Json }[] }[];
      const tv = devices.find((d) => d.client === '127.0.0.1')!;
      expect(tv).toMatchObject({ name: 'Living room TV', nameFrom: 'config', total: 7, blocked: 4, byOutcome: { blocked: 4, forwarded: 3 } });
      expect(tv.kind).toMatch(/Xiaomi/);
      expect(tv.vendors.map((v) => v.vendor)).toContain('xiaomi');
      expect(tv.vendors.find((v) => v.vendor === 'xiaomi')).toMatchObject({ allowed: 2, byOutcome: { forwarded: 2 } });
      expect(devices.find((d) => d.client === '::1')).toMatchObject({ name: 'Laptop', total: 1, blocked: 1 });
    });

    it('/api/top lists blocked names with their rule and list, and the other kinds', async () => {
      const blocked = await http(t, '/api/top?kind=blocked');
      expect(blocked.status).toBe(200);
      const first = (blocked.json.entries as Json[])[0];
      expect(first).toMatchObject({ key: 'tracking.example.com', count: 3, lists: ['file-trackers.txt'] });
      expect(first.rule).toMatch(/tracking\.example\.com.*trackers\.txt/);
      const lists = await http(t, '/api/top?kind=lists');
      expect(lists.json.entries).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'file-trackers.txt', count: 4 }), expect.objectContaining({ key: 'file-ads.txt', count: 1 })]));
      const clients = await http(t, '/api/top?kind=clients');
      expect((clients.json.entries as Json[])[0]).toMatchObject({ key: '127.0.0.1', count: 7, device: 'Living room TV' });
      const queried = await http(t, '/api/top?kind=queried&limit=1');
      expect(queried.json.entries).toHaveLength(1);
      const vendors = await http(t, '/api/top?kind=vendors');
      expect((vendors.json.entries as Json[])[0]).toMatchObject({ key: 'xiaomi', count: 2 });
    });

    it('/api/querylog pages newest first with a cursor and filters by client, name and outcome', async () => {
      const seen: { name: string; time: string }[] = [];
      const cursors = new Set<string>();
      let cursor: string | null = null;
      for (let i = 0; i < 10; i++) {
        const r = await http(t, `/api/querylog?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
        expect(r.status).toBe(200);
        seen.push(...(r.json.rows as { name: string; time: string }[]));
        cursor = r.json.next as string | null;
        if (!cursor) break;
        expect(cursors.has(cursor)).toBe(false);
        cursors.add(cursor);
      }
      expect(seen).toHaveLength(8);
      expect(seen.map((r) => r.name).sort()).toEqual(
        ['tracking.example.com', 'tracking.example.com', 'tracking.example.com', 'ads.example.org', 'www.example.org', 'tracking.miui.com', 'data.mistat.xiaomi.com', 'metrics.example.net'].sort(),
      );
      for (let i = 1; i < seen.length; i++) expect(seen[i].time <= seen[i - 1].time).toBe(true);
      expect(seen[0].name).toBe('metrics.example.net');

      const v6 = await http(t, '/api/querylog?client=::1');
      expect((v6.json.rows as Json[]).map((r) => r.name)).toEqual(['metrics.example.net']);
      expect((v6.json.rows as Json[])[0]).toMatchObject({ device: 'Laptop', type: 'A', outcome: 'blocked', rcode: 'NOERROR', protocol: 'udp' });
      const named = await http(t, '/api/querylog?name=MIUI');
      expect((named.json.rows as Json[]).map((r) => r.name)).toEqual(['tracking.miui.com']);
      const forwarded = await http(t, '/api/querylog?outcome=forwarded,cached');
      expect((forwarded.json.rows as Json[]).every((r) => r.outcome === 'forwarded' || r.outcome === 'cached')).toBe(true);
      expect(forwarded.json.rows).toHaveLength(3);
      const old = await http(t, '/api/querylog?until=2020-01-01T00:00:00Z&since=2019-01-01T00:00:00Z');
      expect(old.json).toMatchObject({ rows: [], next: null });
    });

    it('/api/why gives the decision for a name now, with the rule and list behind it', async () => {
      const r = await http(t, '/api/why?name=TRACKING.example.com.');
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ name: 'tracking.example.com', action: 'block', decidedBy: 'blocklist' });
      expect(((r.json.table as Json).rows as Json[])[0]).toMatchObject({ name: 'tracking.example.com', self: true });
    });

    it('/api/lists gives each source with its status, entries and hits', async () => {
      const r = await http(t, '/api/lists');
      expect(r.status).toBe(200);
      const sources = r.json.sources as { name: string; entries: number; status: string; hits: { total: number; window: number } }[];
      expect(sources.find((s) => s.name === 'file-trackers.txt')).toMatchObject({ entries: 2, hits: { total: 4, window: 4 } });
      expect(sources.find((s) => s.name === 'file-ads.txt')).toMatchObject({ entries: 1, hits: { total: 1, window: 1 } });
    });

    it('/api/health reports the blocklist, upstreams and the query log', async () => {
      const r = await http(t, '/api/health');
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ status: 'ok', blocklist: { rules: 3 }, querylog: { mode: 'disk', dropped: 0 } });
      expect((r.json.querylog as Json).rowsWritten).toBeGreaterThanOrEqual(8);
    });

    it('/metrics speaks the Prometheus text format with queries, latency, cache, upstreams, blocklist and query log', async () => {
      const r = await http(t, '/metrics');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      const value = (re: RegExp) => Number(re.exec(r.text)?.[1] ?? NaN);
      expect(value(/^hushdns_queries_total\{outcome="blocked",protocol="udp",type="A"\} (\d+)$/m)).toBeGreaterThanOrEqual(5);
      expect(value(/^hushdns_answer_duration_seconds_count (\d+)$/m)).toBeGreaterThanOrEqual(8);
      expect(value(/^hushdns_answer_duration_seconds_bucket\{le="\+Inf"\} (\d+)$/m)).toBe(value(/^hushdns_answer_duration_seconds_count (\d+)$/m));
      expect(r.text).toMatch(/^# TYPE hushdns_answer_duration_seconds histogram$/m);
      expect(value(/^hushdns_blocklist_rules (\d+)$/m)).toBe(3);
      expect(r.text).toMatch(/^hushdns_blocklist_age_seconds \d/m);
      expect(r.text).toMatch(/^hushdns_upstream_queries_total\{upstream="udp:\/\/127\.0\.0\.1:\d+"\} \d+$/m);
      expect(r.text).toMatch(/^hushdns_upstream_errors_total\{upstream="[^"]+",kind="timeout"\} \d+$/m);
      // Forwarded answers per upstream, as a histogram: buckets, sum and count for each upstream.
      expect(r.text).toMatch(/^# TYPE hushdns_upstream_answer_duration_seconds histogram$/m);
      const forwarded = value(/^hushdns_upstream_answer_duration_seconds_count\{upstream="udp:\/\/127\.0\.0\.1:\d+"\} (\d+)$/m);
      expect(forwarded).toBe(3);
      expect(value(/^hushdns_upstream_answer_duration_seconds_bucket\{upstream="udp:\/\/127\.0\.0\.1:\d+",le="\+Inf"\} (\d+)$/m)).toBe(forwarded);
      expect(value(/^hushdns_upstream_answer_duration_seconds_bucket\{upstream="udp:\/\/127\.0\.0\.1:\d+",le="5"\} (\d+)$/m)).toBe(forwarded);
      expect(value(/^hushdns_refused_total\{cause="rate-limit"\} (\d+)$/m)).toBe(0);
      expect(r.text).toMatch(/^hushdns_cache_entries \d+$/m);
      expect(r.text).toMatch(/^hushdns_querylog_queue_depth \d+$/m);
      expect(value(/^hushdns_querylog_dropped_total (\d+)$/m)).toBe(0);
      expect(r.text).toMatch(/^process_cpu_seconds_total /m);
    });
  });

  describe('bad input', () => {
    it('answers 4xx JSON naming the field, never a stack trace', async () => {
      const cases: [string, number, string][] = [
        ['/api/top', 400, 'kind'],
        ['/api/top?kind=everything', 400, 'kind'],
        ['/api/summary?since=yesterday-ish', 400, 'since'],
        ['/api/summary?since=1h&until=2h', 400, 'until'],
        ['/api/querylog?limit=0', 400, 'limit'],
        ['/api/querylog?limit=5000', 400, 'limit'],
        ['/api/querylog?cursor=abc', 400, 'cursor'],
        ['/api/querylog?outcome=exploded', 400, 'outcome'],
        [`/api/querylog?name=${'a'.repeat(300)}`, 400, 'name'],
        ['/api/querylog?client=%0a', 400, 'client'],
        ['/api/why', 400, 'name'],
      ];
      for (const [path, status, field] of cases) {
        const r = await http(t, path);
        expect(r.status, path).toBe(status);
        expect(r.json.field, path).toBe(field);
        expect(Object.keys(r.json).sort(), path).toEqual(['error', 'field']);
        expect(r.text, path).not.toMatch(/\n\s+at |\.ts:\d+/);
      }
      const missing = await http(t, '/api/nothing');
      expect(missing.status).toBe(404);
      expect(missing.json.error).toMatch(/no such endpoint/);
      const wrongMethod = await http(t, '/api/summary', { method: 'POST', token: TOKEN, body: {} });
      expect(wrongMethod.status).toBe(405);
      expect(wrongMethod.headers.allow).toBe('GET, HEAD');
    });

    it('refuses pages reached by a foreign host name (DNS rebinding) but not health checks', async () => {
      const foreign = await http(t, '/api/summary', { headers: { host: 'attacker.example:8080' } });
      expect(foreign.status).toBe(403);
      expect(foreign.json.field).toBe('host');
      expect((await http(t, '/', { headers: { host: 'attacker.example' } })).status).toBe(403);
      expect((await http(t, '/api/summary', { headers: { host: 'hushdns.lan:8080' } })).status).toBe(200);
      expect((await http(t, '/api/summary', { headers: { host: 'hushdns:8080' } })).status).toBe(200);
      expect((await http(t, '/api/summary', { headers: { host: '[::1]:8080' } })).status).toBe(200);
      expect((await http(t, '/api/health', { headers: { host: 'attacker.example' } })).status).toBe(200);
      expect((await http(t, '/metrics', { headers: { host: 'attacker.example' } })).status).toBe(200);
    });
  });

  describe('changes', () => {
    it('need the API token: 401 without it or with a wrong one', async () => {
      for (const path of ['/api/allow', '/api/deny', '/api/pause', '/api/lists/refresh']) {
        const none = await http(t, path, { body: { name: 'x.example.org', seconds: 1 } });
        expect(none.status, path).toBe(401);
        expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
        expect(none.json.field).toBe('authorization');
        const wrong = await http(t, path, { token: `${TOKEN}x`, body: { name: 'x.example.org', seconds: 1 } });
        expect(wrong.status, path).toBe(401);
      }
      expect(t.server.userRules.size).toBe(0);
    });

    it('check the body: JSON only, size-capped, fields named', async () => {
      expect((await http(t, '/api/allow', { token: TOKEN, raw: 'name=x.example.org', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(415);
      const big = await http(t, '/api/allow', { token: TOKEN, body: { name: 'x'.repeat(20_000) } });
      expect(big.status).toBe(413);
      expect(big.json.field).toBe('body');
      expect((await http(t, '/api/allow', { token: TOKEN, raw: '{"name":', headers: { 'content-type': 'application/json' } })).json).toMatchObject({ field: 'body' });
      expect((await http(t, '/api/allow', { token: TOKEN, body: ['x.example.org'] })).json).toMatchObject({ field: 'body' });
      expect((await http(t, '/api/allow', { token: TOKEN, body: {} })).json).toMatchObject({ field: 'name' });
      const bad = await http(t, '/api/allow', { token: TOKEN, body: { name: 'not a name!' } });
      expect(bad.status).toBe(400);
      expect(bad.json.field).toBe('name');
      expect((await http(t, '/api/deny', { token: TOKEN, body: { name: 'co.uk' } })).json.error).toMatch(/public-suffix/);
      expect((await http(t, '/api/pause', { token: TOKEN, body: { seconds: -1 } })).json).toMatchObject({ field: 'seconds' });
      expect((await http(t, '/api/pause', { token: TOKEN, body: { seconds: 'ten' } })).json).toMatchObject({ field: 'seconds' });
      expect((await http(t, '/api/pause', { token: TOKEN, body: { seconds: 10, client: 'my phone' } })).json).toMatchObject({ field: 'client' });
      expect(t.server.userRules.size).toBe(0);
    });

    it('allow takes effect on the next query, without a recompile, and shows in /api/why', async () => {
      expect(addressesOf(await ask(t, 'tracking.example.com'))).toEqual(['0.0.0.0']);
      const r = await http(t, '/api/allow', { token: TOKEN, body: { name: 'tracking.example.com' } });
      expect(r.status).toBe(200);
      expect(r.json.entry).toMatchObject({ action: 'allow', name: 'tracking.example.com', scope: 'subtree' });
      expect(addressesOf(await ask(t, 'tracking.example.com'))).toEqual([DEFAULT_A]);
      const why = await http(t, '/api/why?name=tracking.example.com');
      expect(why.json).toMatchObject({ action: 'allow', decidedBy: 'user', user: [{ action: 'allow', name: 'tracking.example.com' }] });
      const removed = await http(t, '/api/allow', { token: TOKEN, body: { name: 'tracking.example.com', remove: true } });
      expect(removed.json.removed).toBe(true);
      expect(addressesOf(await ask(t, 'tracking.example.com'))).toEqual(['0.0.0.0']);
    });

    it('deny blocks at once, names your list as the reason and counts its hits', async () => {
      expect(addressesOf(await ask(t, 'shop.example.org'))).toEqual([DEFAULT_A]);
      const r = await http(t, '/api/deny', { token: TOKEN, body: { name: '=shop.example.org' } });
      expect(r.json.entry).toMatchObject({ action: 'deny', scope: 'exact' });
      const blocked = await ask(t, 'shop.example.org');
      expect(addressesOf(blocked)).toEqual(['0.0.0.0']);
      expect(edeOf(blocked)?.text).toMatch(/shop\.example\.org.*user-deny/);
      expect(addressesOf(await ask(t, 'www.shop.example.org'))).toEqual([DEFAULT_A]);
      await t.server.querylog.flush();
      const lists = await http(t, '/api/lists');
      expect(lists.json.user).toMatchObject({ deny: [{ name: 'shop.example.org', scope: 'exact' }], hits: { deny: { total: 1 } } });
      await http(t, '/api/deny', { token: TOKEN, body: { name: '=shop.example.org', remove: true } });
    });

    it('pause lets everything through for everyone, and ends by itself', async () => {
      const r = await http(t, '/api/pause', { token: TOKEN, body: { seconds: 1 } });
      expect(r.status).toBe(200);
      expect((r.json.paused as Json).everyone).toEqual(expect.any(String));
      expect(addressesOf(await ask(t, 'ads.example.org'))).toEqual([DEFAULT_A]);
      expect((await http(t, '/api/summary')).json.paused).toMatchObject({ everyone: expect.any(String) });
      await new Promise((res) => setTimeout(res, 1100));
      expect(addressesOf(await ask(t, 'deep.ads.example.org'))).toEqual(['0.0.0.0']);
      expect((await http(t, '/api/health')).json.paused).toMatchObject({ everyone: null });
    });

    it('pause for one device leaves the others blocked', async () => {
      await http(t, '/api/pause', { token: TOKEN, body: { seconds: 30, client: '127.0.0.1' } });
      expect(addressesOf(await ask(t, 'x.ads.example.org'))).toEqual([DEFAULT_A]);
      expect(addressesOf(await ask6(t, 'x.ads.example.org'))).toEqual(['0.0.0.0']);
      const resumed = await http(t, '/api/pause', { token: TOKEN, body: { seconds: 0, client: '127.0.0.1' } });
      expect((resumed.json.paused as Json).clients).toEqual([]);
      expect(addressesOf(await ask(t, 'y.ads.example.org'))).toEqual(['0.0.0.0']);
    });

    it('pause for one device matches it however its address is written (IPv4-mapped, uncompressed IPv6)', async () => {
      const mapped = await http(t, '/api/pause', { token: TOKEN, body: { seconds: 30, client: '::ffff:127.0.0.1' } });
      expect(mapped.status).toBe(200);
      expect((mapped.json.paused as Json).clients).toEqual([{ client: '127.0.0.1', until: expect.any(String) }]);
      expect(addressesOf(await ask(t, 'm1.ads.example.org'))).toEqual([DEFAULT_A]);
      expect(addressesOf(await ask6(t, 'm1.ads.example.org'))).toEqual(['0.0.0.0']);
      await http(t, '/api/pause', { token: TOKEN, body: { seconds: 0, client: '127.0.0.1' } });

      const long = await http(t, '/api/pause', { token: TOKEN, body: { seconds: 30, client: '0:0:0:0:0:0:0:1' } });
      expect((long.json.paused as Json).clients).toEqual([{ client: '::1', until: expect.any(String) }]);
      expect(addressesOf(await ask6(t, 'm2.ads.example.org'))).toEqual([DEFAULT_A]);
      expect(addressesOf(await ask(t, 'm2.ads.example.org'))).toEqual(['0.0.0.0']);
      // Resuming by another spelling of the same address ends that pause.
      const resumed = await http(t, '/api/pause', { token: TOKEN, body: { seconds: 0, client: '::0:1' } });
      expect((resumed.json.paused as Json).clients).toEqual([]);
      expect(addressesOf(await ask6(t, 'm3.ads.example.org'))).toEqual(['0.0.0.0']);

      for (const bad of ['192.168.1.300', '::ffff:1.2.3', 'fe80::1%', 'localhost']) {
        const r = await http(t, '/api/pause', { token: TOKEN, body: { seconds: 30, client: bad } });
        expect(r.status, bad).toBe(400);
        expect(r.json, bad).toMatchObject({ field: 'client', error: expect.stringContaining('not an IP address') });
      }
      expect(t.server.pause.state().clients).toEqual([]);
      // The log's client filter takes any spelling too.
      await t.server.querylog.flush();
      const v6 = await http(t, '/api/querylog?client=0:0:0:0:0:0:0:1&name=m2.ads');
      expect((v6.json.rows as Json[]).map((r) => r.client)).toEqual(['::1']);
    });

    it('lists/refresh starts a refresh in the background and refuses a second one while it runs', async () => {
      const first = await http(t, '/api/lists/refresh', { token: TOKEN, body: {} });
      expect(first.status).toBe(202);
      expect(first.json).toMatchObject({ started: true, refresh: { running: true } });
      const second = await http(t, '/api/lists/refresh', { token: TOKEN, body: {} });
      expect(second.status).toBe(409);
      for (let i = 0; i < 200 && ((await http(t, '/api/health')).json.refresh as Json).running; i++) await new Promise((res) => setTimeout(res, 100));
      expect(((await http(t, '/api/health')).json.refresh as Json).running).toBe(false);
    }, 30_000);
  });
});

describe('allow hits, outcomes per device, refusals by cause', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      lists: { ...LISTS, 'allow.txt#adblock': '@@||ok.ads.example.org^\n' },
      flags: { 'api-token': TOKEN, 'querylog-flush-interval': '200ms', 'default-sources': false, bundled: false, 'rate-limit': 40, 'rate-limit-window': '60s', 'rate-limit-loopback': true },
      ipv6: false,
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('counts answers an allow list or your allow entry let through, per list, per entry and per rule', async () => {
    // The allow list beats the block list; the first answer is forwarded, the second cached.
    for (let i = 0; i < 2; i++) expect(addressesOf(await ask(t, 'ok.ads.example.org'))).toEqual([DEFAULT_A]);
    expect(addressesOf(await ask(t, 'ads.example.org'))).toEqual(['0.0.0.0']);
    await http(t, '/api/allow', { token: TOKEN, body: { name: 'tracking.example.com' } });
    for (let i = 0; i < 3; i++) expect(addressesOf(await ask(t, 'tracking.example.com'))).toEqual([DEFAULT_A]);
    await t.server.querylog.flush();

    const lists = await http(t, '/api/lists');
    const sources = lists.json.sources as { name: string; hits: Json }[];
    expect(sources.find((x) => x.name === 'file-allow.txt')?.hits).toEqual({ total: 2, window: 2, blocked: { total: 0, window: 0 }, allowed: { total: 2, window: 2 } });
    expect(sources.find((x) => x.name === 'file-ads.txt')?.hits).toMatchObject({ total: 1, blocked: { total: 1 }, allowed: { total: 0 } });
    const user = lists.json.user as { allow: { name: string; hits: Json }[]; hits: { allow: Json } };
    expect(user.hits.allow).toMatchObject({ total: 3, allowed: { total: 3, window: 3 } });
    expect(user.allow).toEqual([expect.objectContaining({ name: 'tracking.example.com', hits: expect.objectContaining({ total: 3, allowed: { total: 3, window: 3 } }) })]);

    const rules = (await http(t, '/api/top?kind=rules')).json.entries as Json[];
    expect(rules).toEqual(
      expect.arrayContaining([
        { key: '@@||tracking.example.com^ (user-allow)', count: 3, blocked: 0, allowed: 3 },
        expect.objectContaining({ key: expect.stringMatching(/^@@.*ok\.ads\.example\.org.*file-allow\.txt/), count: 2, allowed: 2 }),
      ]),
    );
    const row = ((await http(t, '/api/querylog?name=ok.ads&limit=1')).json.rows as Json[])[0];
    expect(row).toMatchObject({ outcome: 'cached', reason: expect.stringMatching(/^@@.*file-allow\.txt/) });
  });

  it('breaks a device and its vendors down by outcome: cached, forwarded, blocked apart', async () => {
    for (let i = 0; i < 3; i++) await ask(t, 'tracking.miui.com');
    await t.server.querylog.flush();
    const devices = (await http(t, '/api/devices')).json.devices as { client: string; byOutcome: Json; vendors: { vendor: string; byOutcome: Json }[] }[];
    const d = devices.find((x) => x.client === '127.0.0.1')!;
    // ok.ads: forwarded + cached; tracking.example.com: forwarded + 2 cached; ads: blocked; miui: forwarded + 2 cached.
    expect(d.byOutcome).toEqual({ forwarded: 3, cached: 5, blocked: 1 });
    expect(d.vendors.find((v) => v.vendor === 'xiaomi')?.byOutcome).toEqual({ forwarded: 1, cached: 2 });
    const summary = await http(t, '/api/summary');
    expect((summary.json.topVendors as Json[]).find((v) => v.vendor === 'xiaomi')).toMatchObject({ byOutcome: { forwarded: 1, cached: 2 } });
    // Queries per minute come from memory: everything answered in the last minutes counts at once.
    expect(summary.json.recentPerMinute).toBeGreaterThan(0);
  });

  it('tells rate-limited refusals apart in /metrics', async () => {
    const before = (await http(t, '/metrics')).text;
    const refused = (text: string, cause: string) => Number(new RegExp(`^hushdns_refused_total\\{cause="${cause}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
    expect(refused(before, 'rate-limit')).toBe(0);
    let limited = 0;
    for (let i = 0; i < 45; i++) if (rcodeOf(await ask(t, `burst${i}.example.org`)) === 5) limited++;
    expect(limited).toBeGreaterThan(0);
    const after = (await http(t, '/metrics')).text;
    expect(refused(after, 'rate-limit')).toBe(limited);
    expect(refused(after, 'acl')).toBe(0);
  });
});

describe('user entries and the log across restarts', () => {
  it('keeps allow and deny entries and the query log in DATA_DIR', async () => {
    const dataDir = tempDir();
    const first = await startTestServer({ lists: LISTS, dataDir, flags: { 'api-token': TOKEN } });
    await http(first, '/api/allow', { token: TOKEN, body: { name: 'ads.example.org' } });
    await http(first, '/api/deny', { token: TOKEN, body: { name: 'evil.example.net' } });
    await ask(first, 'www.example.org');
    await first.stop();
    expect(JSON.parse(readFileSync(join(dataDir, 'user-rules.json'), 'utf8')).entries).toHaveLength(2);

    const second = await startTestServer({ lists: LISTS, dataDir, flags: { 'api-token': TOKEN } });
    try {
      expect(addressesOf(await ask(second, 'ads.example.org'))).toEqual([DEFAULT_A]);
      expect(addressesOf(await ask(second, 'a.evil.example.net'))).toEqual(['0.0.0.0']);
      const log = await http(second, '/api/querylog?name=www.example.org');
      expect((log.json.rows as Json[]).length).toBe(1);
    } finally {
      await second.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('generates an API token into DATA_DIR/api-token when none is configured, and turns changes off with "off"', async () => {
    const t = await startTestServer({ lists: LISTS, flags: { 'api-token': 'auto' } });
    try {
      const file = join(t.dataDir, 'api-token');
      expect(existsSync(file)).toBe(true);
      const token = readFileSync(file, 'utf8').trim();
      expect(token.length).toBeGreaterThanOrEqual(24);
      expect((await http(t, '/api/pause', { token, body: { seconds: 0 } })).status).toBe(200);
    } finally {
      await t.stop();
    }
    const off = await startTestServer({ lists: LISTS, flags: { 'api-token': 'off' } });
    try {
      const r = await http(off, '/api/pause', { token: 'whatever-token-000000', body: { seconds: 0 } });
      expect(r.status).toBe(403);
    } finally {
      await off.stop();
    }
  });

  it('answers 503 for statistics when the query log is off, and DNS goes on', async () => {
    const t = await startTestServer({ lists: LISTS, flags: { querylog: 'off' } });
    try {
      expect(addressesOf(await ask(t, 'ads.example.org'))).toEqual(['0.0.0.0']);
      const r = await http(t, '/api/summary');
      expect(r.status).toBe(503);
      expect(r.json.error).toMatch(/off/);
      expect((await http(t, '/api/health')).json).toMatchObject({ status: 'ok', querylog: { mode: 'off' } });
      expect(existsSync(join(t.dataDir, 'querylog.sqlite'))).toBe(false);
    } finally {
      await t.stop();
    }
  });
});

describe('devices', () => {
  let router: Socket;
  let routerPort: number;
  const ptrAsked: string[] = [];

  beforeAll(async () => {
    // A stand-in for the home router: answers PTR queries for loopback with a LAN name.
    router = createSocket('udp4');
    router.on('message', (msg, rinfo) => {
      const req = dns2.Packet.parse(msg);
      const res = dns2.Packet.createResponseFromRequest(req);
      const q = req.questions[0];
      ptrAsked.push(q.name);
      if (q.type === dns2.Packet.TYPE.PTR && q.name === '1.0.0.127.in-addr.arpa') {
        res.answers.push({ name: q.name, type: dns2.Packet.TYPE.PTR, class: dns2.Packet.CLASS.IN, ttl: 60, domain: 'kitchen-tablet.lan' } as never);
      } else res.header.rcode = 3;
      router.send(res.toBuffer(), rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => router.bind(0, '127.0.0.1', r));
    routerPort = router.address().port;
  });
  afterAll(() => router?.close());

  it('are named by the router (reverse DNS via local-upstream) when the config does not name them', async () => {
    const t = await startTestServer({ lists: LISTS, flags: { 'local-upstream': `udp://127.0.0.1:${routerPort}`, 'local-domain': 'lan' } });
    try {
      await ask(t, 'tracking.example.com');
      await t.server.querylog.flush();
      let name: unknown = null;
      for (let i = 0; i < 50 && !name; i++) {
        const r = await http(t, '/api/devices');
        name = (r.json.devices as Json[]).find((d) => d.client === '127.0.0.1')?.name ?? null;
        if (!name) await new Promise((res) => setTimeout(res, 50));
      }
      expect(name).toBe('kitchen-tablet.lan');
      expect(ptrAsked).toContain('1.0.0.127.in-addr.arpa');
    } finally {
      await t.stop();
    }
  });

  it('get their MAC from an ARP table and can be named by it', () => {
    const dir = tempDir();
    const arp = join(dir, 'arp');
    writeFileSync(
      arp,
      'IP address       HW type     Flags       HW address            Mask     Device\n' +
        '192.168.1.23     0x1         0x2         aa:bb:cc:dd:ee:01     *        eth0\n' +
        '192.168.1.99     0x1         0x0         00:00:00:00:00:00     *        eth0\n',
    );
    expect([...readArpTable(arp)]).toEqual([['192.168.1.23', 'aa:bb:cc:dd:ee:01']]);
    const devices = new Devices({ names: { 'AA-BB-CC-DD-EE-01': 'Phone by MAC', '192.168.1.40': 'NAS' }, catalog: VendorCatalog.load(), arpFile: arp });
    expect(devices.identify('192.168.1.23')).toEqual({ address: '192.168.1.23', name: 'Phone by MAC', nameFrom: 'config', mac: 'aa:bb:cc:dd:ee:01' });
    expect(devices.identify('192.168.1.40')).toMatchObject({ name: 'NAS', mac: null });
    expect(devices.identify('192.168.1.41')).toMatchObject({ name: null, nameFrom: null });
    rmSync(dir, { recursive: true, force: true });
  });

  it('are given a likely kind from the vendors they talk to, a device vendor before an operating system', () => {
    const devices = new Devices({ names: {}, catalog: VendorCatalog.load() });
    expect(devices.kindOf([{ vendor: 'android', blocked: 0, allowed: 900 }, { vendor: 'xiaomi', blocked: 40, allowed: 2 }])?.vendor).toBe('xiaomi');
    expect(devices.kindOf([{ vendor: 'lg', blocked: 10, allowed: 0 }])?.kind).toMatch(/LG/);
    expect(devices.kindOf([{ vendor: 'apple', blocked: 0, allowed: 10 }])?.vendor).toBe('apple');
    expect(devices.kindOf([{ vendor: 'mixpanel', blocked: 10, allowed: 0 }])).toBeNull();
    expect(devices.kindOf([{ vendor: 'no-such-vendor', blocked: 3, allowed: 3 }, { vendor: 'lg', blocked: 0, allowed: 0 }])).toBeNull();
  });

  it('take no kind from shops, websites, companion apps or ACR, which any device reaches', () => {
    const devices = new Devices({ names: {}, catalog: VendorCatalog.load() });
    // A Windows laptop whose owner shops on Amazon, streams Prime Video and Netflix, reads
    // Samsung's and LG's product pages and searches Google: lots of Amazon and Google, a little Windows.
    const laptop = [
      { vendor: 'google', blocked: 0, allowed: 1400 },
      { vendor: 'amazon', blocked: 120, allowed: 900 },
      { vendor: 'microsoft', blocked: 40, allowed: 300 },
      { vendor: 'samsung-web', blocked: 12, allowed: 60 },
      { vendor: 'lg-web', blocked: 0, allowed: 25 },
      { vendor: 'roku-web', blocked: 3, allowed: 10 },
      { vendor: 'windows', blocked: 0, allowed: 35 },
    ];
    expect(devices.kindOf(laptop)).toEqual({ kind: 'Windows PC', vendor: 'windows' });
    // An iPhone with the Mi Home, Roku, Alexa and ThinQ apps and a game that carries Alphonso's SDK.
    const iphone = [
      { vendor: 'apple', blocked: 30, allowed: 700 },
      { vendor: 'xiaomi-web', blocked: 0, allowed: 400 },
      { vendor: 'roku-web', blocked: 20, allowed: 50 },
      { vendor: 'amazon', blocked: 15, allowed: 200 },
      { vendor: 'lg-web', blocked: 0, allowed: 80 },
      { vendor: 'alphonso', blocked: 60, allowed: 0 },
    ];
    expect(devices.kindOf(iphone)?.vendor).toBe('apple');
    // The same laptop before its first Windows check: nothing says what it is, so no guess.
    expect(devices.kindOf(laptop.filter((v) => v.vendor !== 'windows'))).toBeNull();
    // A Fire TV: its captive-portal checks and updates, plus Prime Video and Amazon metrics.
    const fireTv = [
      { vendor: 'amazon', blocked: 300, allowed: 500 },
      { vendor: 'amazon-devices', blocked: 0, allowed: 48 },
      { vendor: 'android', blocked: 0, allowed: 20 },
      { vendor: 'google', blocked: 0, allowed: 150 },
    ];
    expect(devices.kindOf(fireTv)).toEqual({ kind: expect.stringMatching(/Fire TV/), vendor: 'amazon-devices' });
  });

  it('are recognised from their real queries: a laptop on amazon.com and Netflix is no Fire TV, a Fire TV is', async () => {
    const t = await startTestServer({
      bundled: true,
      flags: { 'querylog-flush-interval': '200ms', 'default-sources': false },
      config: { devices: { '127.0.0.1': 'Laptop', '::1': 'Living room stick' } },
    });
    try {
      const laptop = ['www.amazon.com', 'fls-na.amazon.com', 'm.media-amazon.com', 'images-na.ssl-images-amazon.com', 'www.primevideo.com', 'c.amazon-adsystem.com', 'www.netflix.com', 'assets.nflxext.com', 'www.samsung.com', 'smetrics.samsung.com', 'www.google.com', 'www.youtube.com', 'www.msftconnecttest.com', 'settings-win.data.microsoft.com'];
      const stick = ['fireoscaptiveportal.com', 'softwareupdates.amazon.com', 'device-metrics-us.amazon.com', 'minerva.devices.a2z.com', 'api.amazonvideo.com', 'www.netflix.com', 'connectivitycheck.gstatic.com'];
      for (const name of laptop) await ask(t, name);
      for (const name of stick) await ask6(t, name);
      await t.server.querylog.flush();
      const r = await http(t, '/api/devices');
      const byClient = new Map((r.json.devices as { client: string; kind: string | null; kindVendor: string | null; vendors: { vendor: string; blocked: number }[] }[]).map((d) => [d.client, d]));
      const lap = byClient.get('127.0.0.1')!;
      expect(lap.vendors.find((v) => v.vendor === 'amazon')?.blocked).toBeGreaterThan(0); // amazon.txt blocked its metrics and ads
      expect(lap.kindVendor).toBe('windows');
      expect(lap.kind).not.toMatch(/Fire TV|Galaxy|Android/);
      const fire = byClient.get('::1')!;
      expect(fire.kindVendor).toBe('amazon-devices');
      expect(fire.kind).toMatch(/Fire TV/);
    } finally {
      await t.stop();
    }
  });

  it('reverse names are built and read correctly', () => {
    expect(ptrName('192.168.1.23')).toBe('23.1.168.192.in-addr.arpa');
    expect(ptrName('2001:db8::1')).toBe(`1.0.0.0.${'0.'.repeat(20)}8.b.d.0.1.0.0.2.ip6.arpa`);
    const res = dns2.Packet.createResponseFromRequest(dns2.Packet.parse(makeQuery('23.1.168.192.in-addr.arpa', 'PTR')));
    res.answers.push({ name: '23.1.168.192.in-addr.arpa', type: dns2.Packet.TYPE.PTR, class: 1, ttl: 60, domain: 'TV.lan' } as never);
    expect(firstPtr(res.toBuffer())).toBe('tv.lan');
    expect(firstPtr(Buffer.from([0, 1, 0x81, 0x83, 0, 0, 0, 0, 0, 0, 0, 0]))).toBeNull();
  });
});
