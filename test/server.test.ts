// The whole server over real sockets: a table compiled from real list files, a fake upstream on
// 127.0.0.1, and real clients (raw packets decoded by dns2, Node's Resolver, dns2's clients).
import { execFile, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { Resolver } from 'node:dns/promises';
import dns2 from 'dns2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/log.js';
import { ClientAcl } from '../server/acl.js';
import { cacheKey } from '../server/cache.js';
import { RateLimiter } from '../server/rate-limit.js';
import { startServer, type RunningServer, type StartOptions } from '../server/server.js';
import { ClientGate } from '../server/stages/access.js';
import { startChildServer } from './helpers/child-server.js';
import { addressesOf, decode, edeOf, findOpt, makeQuery, rcodeOf, tcpExchange, udpExchange } from './helpers/dns-client.js';
import { DEFAULT_A, SPOOFED_A, startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.js';
import { compileLists, startTestServer, tempDir, type TestServer } from './helpers/server.js';
import { makeTestCert } from './helpers/tls-cert.js';

const LISTS = {
  'trackers.txt#hosts': '0.0.0.0 tracking.example.com\n0.0.0.0 TELEMETRY.Example.NET # upper case\n',
  'ads.txt#adblock': '||ads.example.org^\n@@||good.ads.example.org^\n||cloaked-tracker.example.net^\n@@||allowed.shop.example^\n',
};

const HAS_DIG = spawnSync('dig', ['-v']).status === 0;
const NOERROR = 0;
const FORMERR = 1;
const SERVFAIL = 2;
const NXDOMAIN = 3;
const NOTIMP = 4;
const REFUSED = 5;
const FLAG_AD = 0x20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Full rcode: the header nibble plus the extended bits from the OPT TTL (RFC 6891 §6.1.3). */
function fullRcode(msg: Buffer): number {
  const opt = findOpt(msg);
  return ((opt < 0 ? 0 : msg[opt + 5]) << 4) | rcodeOf(msg);
}

/** TTL of the first authority record (the SOA of a negative answer). */
function soaTtlOf(msg: Buffer): number {
  return decode(msg).authorities[0].ttl;
}

/**
 * The real server in-process with start options the shared helper does not pass (a CA for https
 * upstreams, a log to read, the failure-summary interval), on one upstream the test owns.
 */
async function startWithOptions(upstreamUrl: string, flags: Record<string, unknown>, start: StartOptions): Promise<{ server: RunningServer; port: number; stop(): Promise<void> }> {
  const dataDir = tempDir();
  await compileLists(dataDir, LISTS);
  const loaded = loadConfig({
    file: null,
    env: {},
    flags: { 'data-dir': dataDir, 'dns-listen': ['127.0.0.1:0'], 'http-listen': '127.0.0.1:0', upstream: [upstreamUrl], 'refresh-interval': '0', 'log-level': 'error', ...flags },
  });
  const server = await startServer(loaded, { log: createLogger('error'), ...start });
  return {
    server,
    port: server.dns.udp[0].address.port,
    stop: async () => {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Waits until `check` holds, polling; fails with `what` after `ms`. */
async function eventually(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('hushdns serve over real sockets', () => {
  let t: TestServer;
  const udp = (msg: Buffer) => udpExchange('127.0.0.1', t.udp4.port, msg);
  const tcp = async (msg: Buffer) => (await tcpExchange('127.0.0.1', t.udp4.port, [msg]))[0];

  beforeAll(async () => {
    t = await startTestServer({ lists: LISTS });
  });
  afterAll(async () => {
    await t?.stop();
  });

  describe('blocking', () => {
    it('answers a name from a hosts list with 0.0.0.0 and :: and says which list blocked it', async () => {
      const a = await udp(makeQuery('tracking.example.com', 'A'));
      expect(rcodeOf(a)).toBe(NOERROR);
      expect(addressesOf(a)).toEqual(['0.0.0.0']);
      const ede = edeOf(a);
      expect(ede?.code).toBe(15);
      expect(ede?.text).toMatch(/tracking\.example\.com.*trackers\.txt/);
      const aaaa = await udp(makeQuery('tracking.example.com', 'AAAA'));
      expect(addressesOf(aaaa)).toEqual(['::']);
      expect(t.upstream.queriesFor('tracking.example.com')).toHaveLength(0);
    });

    it('blocks hosts-list names exactly: their subdomains are forwarded', async () => {
      const r = await udp(makeQuery('sub.tracking.example.com', 'A'));
      expect(addressesOf(r)).toEqual([DEFAULT_A]);
    });

    it('blocks an adblock rule and every subdomain of it, but honours @@ exceptions', async () => {
      expect(addressesOf(await udp(makeQuery('ads.example.org', 'A')))).toEqual(['0.0.0.0']);
      expect(addressesOf(await udp(makeQuery('deep.cdn.ads.example.org', 'A')))).toEqual(['0.0.0.0']);
      expect(addressesOf(await udp(makeQuery('good.ads.example.org', 'A')))).toEqual([DEFAULT_A]);
    });

    it('matches names case-insensitively and echoes the client 0x20 case in the question', async () => {
      const r = await udp(makeQuery('TeLeMeTrY.eXaMpLe.NeT', 'A'));
      expect(addressesOf(r)).toEqual(['0.0.0.0']);
      expect(decode(r).questions[0].name).toBe('TeLeMeTrY.eXaMpLe.NeT');
    });

    it('gives blocked names NODATA for every type that is not an address, HTTPS included', async () => {
      for (const type of ['HTTPS', 'SVCB', 'TXT', 'MX']) {
        const r = await udp(makeQuery('ads.example.org', type));
        expect(rcodeOf(r), type).toBe(NOERROR);
        expect(decode(r).answers, type).toHaveLength(0);
        expect(decode(r).authorities.length, `${type} carries an SOA for negative caching`).toBe(1);
      }
    });

    it('adds no EDE (and no OPT) when the query had no EDNS', async () => {
      const r = await udp(makeQuery('ads.example.org', 'A', { edns: null }));
      expect(addressesOf(r)).toEqual(['0.0.0.0']);
      expect(findOpt(r)).toBe(-1);
    });

    it('blocks over TCP and over IPv6 too', async () => {
      expect(addressesOf(await tcp(makeQuery('ads.example.org', 'A')))).toEqual(['0.0.0.0']);
      const v6 = await udpExchange('::1', t.udp6!.port, makeQuery('ads.example.org', 'AAAA'));
      expect(addressesOf(v6)).toEqual(['::']);
      const v6tcp = (await tcpExchange('::1', t.udp6!.port, [makeQuery('tracking.example.com', 'A')]))[0];
      expect(addressesOf(v6tcp)).toEqual(['0.0.0.0']);
    });

    it('blocks a CNAME-cloaked tracker and names the CNAME in the reason', async () => {
      t.upstream.set('metrics.shop.example', { cname: ['shop.cloaked-tracker.example.net'], a: ['198.51.100.7'] });
      const r = await udp(makeQuery('metrics.shop.example', 'A'));
      expect(addressesOf(r)).toEqual(['0.0.0.0']);
      expect(edeOf(r)?.text).toMatch(/CNAME shop\.cloaked-tracker\.example\.net/);
    });

    it('answers an allow-listed name normally even when its CNAME target is blocked', async () => {
      t.upstream.set('allowed.shop.example', { cname: ['cdn.cloaked-tracker.example.net'], a: ['198.51.100.8'] });
      const r = await udp(makeQuery('allowed.shop.example', 'A'));
      expect(addressesOf(r)).toEqual(['198.51.100.8']);
    });
  });

  describe('forwarding and cache', () => {
    it('forwards allowed names and answers the second query from cache with an aged TTL', async () => {
      t.upstream.set('cache-me.example', { a: ['198.51.100.1'], ttl: 120 });
      const first = await udp(makeQuery('cache-me.example', 'A'));
      expect(addressesOf(first)).toEqual(['198.51.100.1']);
      await new Promise((r) => setTimeout(r, 1100));
      const second = await udp(makeQuery('cache-me.example', 'A'));
      expect(addressesOf(second)).toEqual(['198.51.100.1']);
      expect(t.upstream.queriesFor('cache-me.example')).toHaveLength(1);
      const ttl = decode(second).answers[0].ttl;
      expect(ttl).toBeLessThan(120);
      expect(ttl).toBeGreaterThanOrEqual(118);
    });

    it('sends upstream a fresh ID, RD set and the client DO bit', async () => {
      await udp(makeQuery('do-bit.example', 'A', { id: 4242, edns: { do: true } }));
      const seen = t.upstream.queriesFor('do-bit.example');
      expect(seen).toHaveLength(1);
      expect(seen[0].do).toBe(true);
      expect(seen[0].flags.rd).toBe(true);
      expect(seen[0].id).not.toBe(4242);
    });

    it('caches NXDOMAIN for the SOA minimum (RFC 2308)', async () => {
      t.upstream.set('nope.example', { rcode: 'NXDOMAIN', soa: { ttl: 300, minimum: 60 } });
      expect(rcodeOf(await udp(makeQuery('nope.example', 'A')))).toBe(NXDOMAIN);
      expect(rcodeOf(await udp(makeQuery('nope.example', 'A')))).toBe(NXDOMAIN);
      expect(t.upstream.queriesFor('nope.example')).toHaveLength(1);
    });

    it('shares one upstream exchange among identical questions in flight', async () => {
      t.upstream.set('slow.example', { a: ['198.51.100.9'], delayMs: 150 });
      const answers = await Promise.all(Array.from({ length: 5 }, () => udp(makeQuery('slow.example', 'A'))));
      for (const a of answers) expect(addressesOf(a)).toEqual(['198.51.100.9']);
      expect(t.upstream.queriesFor('slow.example')).toHaveLength(1);
    });

    it('sets TC when the answer exceeds the client UDP size, and TCP carries it whole', async () => {
      t.upstream.set('big.example', { manyA: 60 });
      const small = await udp(makeQuery('big.example', 'A', { edns: null }));
      expect(small[2] & 0x02).toBe(0x02);
      expect(small.length).toBeLessThanOrEqual(512);
      const whole = await tcp(makeQuery('big.example', 'A', { edns: null }));
      expect(addressesOf(whole)).toHaveLength(60);
    });

    it('answers SERVFAIL with EDE 23 when the upstream never answers a name it has not seen', async () => {
      t.upstream.set('blackhole.example', { drop: true });
      const started = Date.now();
      const r = await udpExchange('127.0.0.1', t.udp4.port, makeQuery('blackhole.example', 'A'), 4000);
      expect(rcodeOf(r)).toBe(SERVFAIL);
      expect(edeOf(r)?.code).toBe(23);
      expect(Date.now() - started).toBeLessThan(2500);
    });

    it('serves a stale answer with EDE 3 when the upstream fails after the TTL ran out (RFC 8767)', async () => {
      t.upstream.set('flaky.example', { a: ['198.51.100.77'], ttl: 1 });
      expect(addressesOf(await udp(makeQuery('flaky.example', 'A')))).toEqual(['198.51.100.77']);
      await new Promise((r) => setTimeout(r, 1200));
      t.upstream.set('flaky.example', { drop: true });
      const r = await udpExchange('127.0.0.1', t.udp4.port, makeQuery('flaky.example', 'A'), 4000);
      expect(addressesOf(r)).toEqual(['198.51.100.77']);
      expect(decode(r).answers[0].ttl).toBe(30);
      expect(edeOf(r)?.code).toBe(3);
    });
  });

  describe('special names never reach the upstream', () => {
    it('answers the Firefox DoH canary and iCloud Private Relay with NXDOMAIN', async () => {
      expect(rcodeOf(await udp(makeQuery('use-application-dns.net', 'A')))).toBe(NXDOMAIN);
      expect(rcodeOf(await udp(makeQuery('mask.icloud.com', 'A')))).toBe(NXDOMAIN);
      expect(rcodeOf(await udp(makeQuery('mask-h2.icloud.com', 'AAAA')))).toBe(NXDOMAIN);
    });

    it('answers resolver.arpa with NODATA and localhost with loopback addresses', async () => {
      const ddr = await udp(makeQuery('_dns.resolver.arpa', 'SVCB'));
      expect(rcodeOf(ddr)).toBe(NOERROR);
      expect(decode(ddr).answers).toHaveLength(0);
      expect(addressesOf(await udp(makeQuery('localhost', 'A')))).toEqual(['127.0.0.1']);
      expect(addressesOf(await udp(makeQuery('app.localhost', 'AAAA')))).toEqual(['::1']);
    });

    it('keeps single-label names, .local, private-use domains and private reverse lookups at home', async () => {
      for (const [name, type] of [
        ['printer', 'A'],
        ['nas.local', 'A'],
        ['router.lan', 'A'],
        ['1.1.168.192.in-addr.arpa', 'PTR'],
        ['5.0.0.10.in-addr.arpa', 'PTR'],
      ] as const) {
        expect(rcodeOf(await udp(makeQuery(name, type))), name).toBe(NXDOMAIN);
      }
      const names = t.upstream.queries.map((q) => q.name.toLowerCase());
      for (const leaked of ['printer', 'nas.local', 'router.lan', '1.1.168.192.in-addr.arpa', '5.0.0.10.in-addr.arpa']) {
        expect(names).not.toContain(leaked);
      }
    });
  });

  describe('protocol hygiene', () => {
    it('answers ANY with the RFC 8482 HINFO and refuses zone transfers and the CHAOS class', async () => {
      const any = decode(await udp(makeQuery('example.com', 'ANY')));
      expect(any.answers).toHaveLength(1);
      expect(any.answers[0].type).toBe(13);
      expect(rcodeOf(await tcp(makeQuery('example.com', 'AXFR')))).toBe(REFUSED);
      expect(rcodeOf(await udp(makeQuery('version.bind', 'TXT', { qclass: 3 })))).toBe(REFUSED);
    });

    it('answers NOTIMP to other opcodes, FORMERR to empty questions and BADVERS to EDNS version 1', async () => {
      expect(rcodeOf(await udp(makeQuery('example.com', 'A', { opcode: 4 })))).toBe(NOTIMP);
      const noQuestion = Buffer.alloc(12);
      noQuestion.writeUInt16BE(0x1234, 0);
      const formerr = await udp(noQuestion);
      expect(rcodeOf(formerr)).toBe(FORMERR);
      expect(formerr.readUInt16BE(0)).toBe(0x1234);
      const badvers = await udp(makeQuery('example.com', 'A', { edns: { version: 1 } }));
      const opt = findOpt(badvers);
      expect(opt).toBeGreaterThan(0);
      expect(badvers[opt + 5]).toBe(1); // extended rcode high bits: 16 = BADVERS
    });

    it('answers NOTIMP to every opcode other than QUERY', async () => {
      for (let opcode = 1; opcode <= 15; opcode++) {
        const r = await udp(makeQuery('example.com', 'A', { opcode }));
        expect(rcodeOf(r), `opcode ${opcode}`).toBe(NOTIMP);
        expect((r[2] >> 3) & 0xf, 'the opcode is echoed').toBe(opcode);
      }
    });

    it('survives the all-zero 12-byte packet that kills naive dns2 servers, then answers normally', async () => {
      const r = await udp(Buffer.alloc(12));
      expect(rcodeOf(r)).toBe(FORMERR);
      expect(addressesOf(await udp(makeQuery('ads.example.org', 'A')))).toEqual(['0.0.0.0']);
    });

    it('never answers a packet with QR=1 (no reflection loops)', async () => {
      const response = makeQuery('example.com', 'A');
      response[2] |= 0x80;
      await expect(udpExchange('127.0.0.1', t.udp4.port, response, 300)).rejects.toThrow(/no UDP answer/);
    });
  });

  describe('TCP (RFC 7766)', () => {
    it('answers pipelined queries on one connection, out of order when the upstream is slow', async () => {
      t.upstream.set('slow-tcp.example', { a: ['198.51.100.20'], delayMs: 200 });
      const msgs = [makeQuery('slow-tcp.example', 'A', { id: 1 }), makeQuery('ads.example.org', 'A', { id: 2 }), makeQuery('tracking.example.com', 'A', { id: 3 })];
      const answers = await tcpExchange('127.0.0.1', t.udp4.port, msgs);
      expect(answers.map((a) => a.readUInt16BE(0))).toEqual([2, 3, 1]);
    });
  });

  describe('third-party clients', () => {
    it("Node's dns Resolver gets sinkholed and forwarded answers", async () => {
      const resolver = new Resolver({ timeout: 2000, tries: 1 });
      resolver.setServers([`127.0.0.1:${t.udp4.port}`]);
      expect(await resolver.resolve4('tracking.example.com')).toEqual(['0.0.0.0']);
      expect(await resolver.resolve4('www.example.com')).toEqual([DEFAULT_A]);
      await expect(resolver.resolve4('use-application-dns.net')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    });

    it("dns2's UDP and TCP clients (dns2 3 on this Node) get the same answers", async () => {
      const udpClient = dns2.UDPClient({ dns: '127.0.0.1', port: t.udp4.port });
      const viaUdp = await udpClient('ads.example.org', 'A');
      expect(viaUdp.answers.map((a: { address?: string }) => a.address)).toEqual(['0.0.0.0']);
      const tcpClient = dns2.TCPClient({ dns: '127.0.0.1', port: t.udp4.port });
      const viaTcp = await tcpClient('www.example.org', 'A');
      expect(viaTcp.answers.map((a: { address?: string }) => a.address)).toEqual([DEFAULT_A]);
    });
  });

  describe.skipIf(!HAS_DIG)('dig', () => {
    if (!HAS_DIG) console.warn('dig tests skipped: dig is not installed (apt-get install dnsutils)');
    // Asynchronous: the server under test shares this process's event loop.
    const run = promisify(execFile);
    const dig = async (args: string[]) => (await run('dig', ['@127.0.0.1', '-p', String(t.udp4.port), '+time=2', '+tries=1', ...args])).stdout;

    it('gets the sinkhole answer with its Extended DNS Error over UDP and TCP', async () => {
      const udpOut = await dig(['tracking.example.com', 'A']);
      expect(udpOut).toMatch(/tracking\.example\.com\.\s+\d+\s+IN\s+A\s+0\.0\.0\.0/);
      expect(udpOut).toMatch(/EDE: 15 \(Blocked\)/);
      expect((await dig(['+tcp', '+short', 'ads.example.org', 'AAAA'])).trim()).toBe('::');
    });

    it('gets com NS from the upstream, and the AD flag dig asks for by default', async () => {
      expect(await dig(['com', 'NS'])).toMatch(/status: NOERROR/);
      t.upstream.set('dig-signed.example', { a: ['198.51.100.42'], authenticated: true });
      expect(await dig(['dig-signed.example'])).toMatch(/flags: qr rd ra ad;/);
      expect(await dig(['+noadflag', 'dig-signed.example'])).toMatch(/flags: qr rd ra;/);
    });

    it('gets forwarded answers and NXDOMAIN for the DoH canary, over IPv6 too', async () => {
      expect((await dig(['+short', 'www.example.com'])).trim()).toBe(DEFAULT_A);
      expect(await dig(['use-application-dns.net'])).toMatch(/status: NXDOMAIN/);
      const v6 = (await run('dig', ['@::1', '-p', String(t.udp6!.port), '+short', '+time=2', '+tries=1', 'tracking.example.com'])).stdout;
      expect(v6.trim()).toBe('0.0.0.0');
    });
  });

  describe('top-level domains and single labels', () => {
    it('sends real top-level domains upstream for every type: com NS, arpa NS, com DS with DO, and the root', async () => {
      for (const [name, type, edns] of [
        ['com', 'NS', undefined],
        ['arpa', 'NS', undefined],
        ['com', 'DS', { do: true }],
        ['xn--p1ai', 'SOA', undefined],
        ['', 'NS', undefined],
      ] as const) {
        const r = await udp(makeQuery(name, type, edns ? { edns } : {}));
        expect(rcodeOf(r), `${name} ${type}`).toBe(NOERROR);
      }
      expect(t.upstream.queriesFor('com').map((q) => [q.type, q.do])).toEqual([
        [2, false], // NS
        [43, true], // DS, with the client's DO bit
      ]);
      expect(t.upstream.queriesFor('arpa').map((q) => q.typeName)).toEqual(['NS']);
      expect(t.upstream.queriesFor('xn--p1ai')).toHaveLength(1);
      expect(t.upstream.queriesFor('').map((q) => q.typeName)).toEqual(['NS']);
    });

    it('keeps unknown single labels at home for every type, HTTPS and SOA included', async () => {
      for (const [name, type] of [
        ['printer', 'A'],
        ['wpad', 'A'],
        ['wpad', 'TXT'],
        ['printer', 'HTTPS'],
        ['desktop-7h3k', 'SOA'],
        ['nas', 'DS'],
      ] as const) {
        expect(rcodeOf(await udp(makeQuery(name, type))), `${name} ${type}`).toBe(NXDOMAIN);
        expect(t.upstream.queriesFor(name), name).toHaveLength(0);
      }
    });
  });

  describe('DNSSEC bits and upstream answers passed through', () => {
    it('asks upstreams with AD set and passes their AD to clients that asked with AD or DO, not to others', async () => {
      t.upstream.set('signed.example', { a: ['198.51.100.41'], authenticated: true });
      const withAd = await udp(makeQuery('signed.example', 'A', { ad: true }));
      expect(addressesOf(withAd)).toEqual(['198.51.100.41']);
      expect(withAd[3] & FLAG_AD, 'AD for a client that asked with AD').toBe(FLAG_AD);
      expect(t.upstream.queriesFor('signed.example')[0].flags.ad).toBe(true);
      // The next two come from the cache: one entry serves both kinds of client.
      expect((await udp(makeQuery('signed.example', 'A')))[3] & FLAG_AD, 'no AD for a client that did not ask').toBe(0);
      expect((await tcp(makeQuery('signed.example', 'A', { ad: true })))[3] & FLAG_AD).toBe(FLAG_AD);
      expect(t.upstream.queriesFor('signed.example')).toHaveLength(1);
    });

    it('asks upstreams with AD even for a client that sent neither AD nor DO', async () => {
      await udp(makeQuery('plain-stub.example', 'A', { edns: null }));
      expect(t.upstream.queriesFor('plain-stub.example')[0].flags.ad).toBe(true);
    });

    it("keeps an upstream's extended rcode for EDNS clients, and gives clients without EDNS SERVFAIL instead", async () => {
      const BADCOOKIE = 23;
      t.upstream.set('cookie.example', { rcode: BADCOOKIE });
      expect(fullRcode(await udp(makeQuery('cookie.example', 'A')))).toBe(BADCOOKIE);
      const plain = await udp(makeQuery('cookie.example', 'A', { edns: null }));
      expect(findOpt(plain)).toBe(-1);
      expect(rcodeOf(plain)).toBe(SERVFAIL);
    });

    it('ignores a reply whose question is compressed (a forgery with the right ID) and takes the real answer', async () => {
      t.upstream.set('bank.example', { a: ['198.51.100.44'], forged: ['compressed-question'] });
      const r = await udp(makeQuery('bank.example', 'A'));
      expect(rcodeOf(r)).toBe(NOERROR);
      expect(addressesOf(r)).toEqual(['198.51.100.44']);
      expect(addressesOf(r)).not.toContain(SPOOFED_A);
      expect(decode(r).questions[0].name).toBe('bank.example');
      const health = t.server.pool.health()[0];
      expect(health.counters.mismatched).toBeGreaterThanOrEqual(1);
    });

    it('answers SERVFAIL, never a spliced question, when the only reply has a compressed question', async () => {
      t.upstream.set('hostile.example', { forged: ['compressed-question'], answer: false });
      const r = await udpExchange('127.0.0.1', t.udp4.port, makeQuery('hostile.example', 'A'), 4000);
      expect(rcodeOf(r)).toBe(SERVFAIL);
      expect(decode(r).questions[0].name).toBe('hostile.example');
      expect(decode(r).answers).toHaveLength(0);
    });

    it('forwards types it has no name for and echoes their question', async () => {
      for (const type of [999, 65280]) {
        const r = await udp(makeQuery('unusual-type.example', type));
        expect(rcodeOf(r), String(type)).toBe(NOERROR);
        expect(decode(r).questions[0].type).toBe(type);
      }
      expect(t.upstream.queriesFor('unusual-type.example').map((q) => q.type)).toEqual([999, 65280]);
    });

    it('echoes an OPT in a truncated answer to an EDNS client', async () => {
      t.upstream.set('big-edns.example', { manyA: 60 });
      const r = await udp(makeQuery('big-edns.example', 'A', { edns: { udpSize: 512 } }));
      expect(r[2] & 0x02).toBe(0x02);
      expect(r.length).toBeLessThanOrEqual(512);
      expect(findOpt(r)).toBeGreaterThan(0);
    });
  });

  describe('negative caching (RFC 2308)', () => {
    it('keeps an NXDOMAIN for min(SOA TTL, SOA MINIMUM) and says so in the SOA it serves from cache', async () => {
      t.upstream.set('gone-min.example', { rcode: 'NXDOMAIN', soa: { ttl: 300, minimum: 40 } });
      t.upstream.set('gone-ttl.example', { rcode: 'NXDOMAIN', soa: { ttl: 40, minimum: 300 } });
      for (const name of ['gone-min.example', 'gone-ttl.example']) {
        const first = await udp(makeQuery(name, 'A'));
        expect(soaTtlOf(first), `${name} first`).toBeLessThanOrEqual(40);
      }
      await sleep(1100);
      for (const name of ['gone-min.example', 'gone-ttl.example']) {
        const second = await udp(makeQuery(name, 'A'));
        expect(rcodeOf(second)).toBe(NXDOMAIN);
        expect(t.upstream.queriesFor(name), `${name} answered from cache`).toHaveLength(1);
        const ttl = soaTtlOf(second);
        expect(ttl, `${name}: the cache's remaining time`).toBeLessThanOrEqual(39);
        expect(ttl).toBeGreaterThanOrEqual(37);
      }
    });

    it('treats NODATA behind a CNAME as negative: kept for the SOA MINIMUM, not the CNAME TTL', async () => {
      t.upstream.set('alias-nodata.example', { cname: ['target-nodata.example'], ttl: 300, soa: { ttl: 300, minimum: 20 } });
      const first = decode(await udp(makeQuery('alias-nodata.example', 'AAAA')));
      expect(first.answers.map((a: { type: number }) => a.type)).toEqual([5]);
      expect(first.authorities.map((a: { type: number }) => a.type)).toEqual([6]);
      await sleep(1100);
      const second = decode(await udp(makeQuery('alias-nodata.example', 'AAAA')));
      expect(t.upstream.queriesFor('alias-nodata.example')).toHaveLength(1);
      expect(second.answers[0].ttl).toBeLessThanOrEqual(19);
      expect(second.authorities[0].ttl).toBeLessThanOrEqual(19);
    });
  });

  describe('hot swap', () => {
    it('blocks a newly listed name right after a recompile, dropping no query', async () => {
      t.upstream.set('soon-blocked.example', { a: ['198.51.100.30'] });
      expect(addressesOf(await udp(makeQuery('soon-blocked.example', 'A')))).toEqual(['198.51.100.30']);
      await t.recompile({ ...LISTS, 'more.txt#domains': 'soon-blocked.example\n' });
      expect(addressesOf(await udp(makeQuery('soon-blocked.example', 'A')))).toEqual(['0.0.0.0']);
    });
  });
});

describe('block modes', () => {
  const cases = [
    { mode: 'nxdomain', check: (r: Buffer) => expect(rcodeOf(r)).toBe(NXDOMAIN) },
    { mode: 'nodata', check: (r: Buffer) => expect([rcodeOf(r), decode(r).answers.length]).toEqual([NOERROR, 0]) },
    { mode: 'refused', check: (r: Buffer) => expect(rcodeOf(r)).toBe(REFUSED) },
    { mode: 'custom', flags: { 'block-ip': ['192.0.2.53', '2001:db8::53'] }, check: (r: Buffer) => expect(addressesOf(r)).toEqual(['192.0.2.53']) },
  ];
  for (const c of cases) {
    it(`answers blocked names per --block-mode ${c.mode}`, async () => {
      const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { 'block-mode': c.mode, ...c.flags } });
      try {
        c.check(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('ads.example.org', 'A')));
      } finally {
        await t.stop();
      }
    });
  }
});

describe('settings that change answers', () => {
  it('gives blocked answers the --block-ttl, in the records and in the SOA of NODATA', async () => {
    const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { 'block-ttl': '7m' } });
    try {
      const a = decode(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('ads.example.org', 'A')));
      expect(a.answers[0].ttl).toBe(420);
      const https = await udpExchange('127.0.0.1', t.udp4.port, makeQuery('ads.example.org', 'HTTPS'));
      expect(decode(https).answers).toHaveLength(0);
      expect(soaTtlOf(https)).toBe(420);
    } finally {
      await t.stop();
    }
  });

  it('forwards iCloud Private Relay names with --no-block-private-relay', async () => {
    const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { 'block-private-relay': false } });
    try {
      t.upstream.set('mask.icloud.com', { a: ['198.51.100.99'] });
      expect(addressesOf(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('mask.icloud.com', 'A')))).toEqual(['198.51.100.99']);
      expect(t.upstream.queriesFor('mask.icloud.com')).toHaveLength(1);
      expect(rcodeOf(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('use-application-dns.net', 'A'))), 'the DoH canary stays').toBe(NXDOMAIN);
    } finally {
      await t.stop();
    }
  });

  it('keeps at most --cache-size answers, least recently used out first', async () => {
    const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { 'cache-size': 2 } });
    try {
      const ask = (name: string) => udpExchange('127.0.0.1', t.udp4.port, makeQuery(name, 'A'));
      await ask('one.example');
      await ask('two.example');
      await ask('one.example'); // a hit: two.example is now the oldest
      await ask('three.example');
      expect(t.server.cache.size).toBe(2);
      await ask('one.example');
      await ask('two.example');
      expect(t.upstream.queriesFor('one.example')).toHaveLength(1);
      expect(t.upstream.queriesFor('two.example')).toHaveLength(2);
      expect(t.server.cache.evictions).toBeGreaterThanOrEqual(2);
    } finally {
      await t.stop();
    }
  });

  it('keeps the cache under --cache-max-bytes', async () => {
    const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { 'cache-max-bytes': '2KiB' } });
    try {
      t.upstream.setDefault({ manyA: 40 }); // about 700 octets an answer
      for (const name of ['b1.example', 'b2.example', 'b3.example', 'b4.example', 'b5.example']) {
        await tcpExchange('127.0.0.1', t.udp4.port, [makeQuery(name, 'A')]);
        expect(t.server.cache.byteSize).toBeLessThanOrEqual(2048);
      }
      expect(t.server.cache.size).toBeGreaterThanOrEqual(1);
      expect(t.server.cache.size).toBeLessThan(5);
      await tcpExchange('127.0.0.1', t.udp4.port, [makeQuery('b1.example', 'A')]);
      expect(t.upstream.queriesFor('b1.example'), 'evicted, so asked again').toHaveLength(2);
    } finally {
      await t.stop();
    }
  });

  it('clamps what it caches, and what clients are told, to --cache-min-ttl and --cache-max-ttl', async () => {
    const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { 'cache-min-ttl': '60s', 'cache-max-ttl': '10m' } });
    try {
      const ttlOf = async (name: string) => decode(await udpExchange('127.0.0.1', t.udp4.port, makeQuery(name, 'A'))).answers[0].ttl;
      t.upstream.set('short.example', { ttl: 1 });
      t.upstream.set('long.example', { ttl: 86_400 });
      expect(await ttlOf('short.example')).toBe(60);
      expect(await ttlOf('long.example')).toBe(600);
      await sleep(1100);
      const short = await ttlOf('short.example');
      expect(short).toBeLessThanOrEqual(59);
      expect(short).toBeGreaterThanOrEqual(57);
      expect(t.upstream.queriesFor('short.example'), 'still cached past its own TTL of 1 s').toHaveLength(1);
      expect(await ttlOf('long.example')).toBeLessThanOrEqual(599);
    } finally {
      await t.stop();
    }
  });
});

describe('access control', () => {
  it('refuses clients outside allow-clients with an answer no larger than the query', async () => {
    const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { 'allow-clients': ['127.0.0.1/32'] } });
    try {
      const q = makeQuery('www.example.com', 'A');
      const r = await udpExchange('127.0.0.1', t.udp4.port, q, 2000, '127.0.0.2');
      expect(rcodeOf(r)).toBe(REFUSED);
      expect(r.length).toBeLessThanOrEqual(q.length);
      expect(addressesOf(await udpExchange('127.0.0.1', t.udp4.port, q))).toEqual([DEFAULT_A]);
    } finally {
      await t.stop();
    }
  });

  it('refuses outsiders whatever they send: other opcodes, EDNS version 1, no question, never a larger answer', async () => {
    const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { 'allow-clients': ['127.0.0.1/32'] } });
    try {
      const noQuestion = Buffer.alloc(12);
      noQuestion.writeUInt16BE(0x4321, 0);
      const probes = [makeQuery('example.com', 'A', { opcode: 4 }), makeQuery('example.com', 'A', { opcode: 5, edns: null }), makeQuery('example.com', 'A', { edns: { version: 1 } }), noQuestion];
      for (const probe of probes) {
        const r = await udpExchange('127.0.0.1', t.udp4.port, probe, 2000, '127.0.0.2');
        expect(rcodeOf(r)).toBe(REFUSED);
        expect(fullRcode(r), 'not BADVERS').toBe(REFUSED);
        expect(r.readUInt16BE(0)).toBe(probe.readUInt16BE(0));
        expect(r.length).toBeLessThanOrEqual(probe.length);
      }
      const viaTcp = (await tcpExchange('127.0.0.1', t.udp4.port, [makeQuery('example.com', 'A', { opcode: 4 })]))[0];
      expect(rcodeOf(viaTcp), 'an allowed client still gets NOTIMP').toBe(NOTIMP);
      expect(rcodeOf(await udpExchange('127.0.0.1', t.udp4.port, noQuestion)), 'and FORMERR').toBe(FORMERR);
    } finally {
      await t.stop();
    }
  });

  it('rate-limits one flooding client while another is served normally, and counts the refusals apart', async () => {
    const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { 'rate-limit': 20, 'rate-limit-window': '60s', 'rate-limit-loopback': true } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 30; i++) codes.push(rcodeOf(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('ads.example.org', 'A'), 2000, '127.0.0.3')));
      expect(codes.filter((c) => c === REFUSED)).toHaveLength(10);
      const other = await udpExchange('127.0.0.1', t.udp4.port, makeQuery('ads.example.org', 'A'), 2000, '127.0.0.4');
      expect(rcodeOf(other)).toBe(NOERROR);
      // A malformed packet from the flooder is refused too, not answered NOTIMP.
      expect(rcodeOf(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('example.com', 'A', { opcode: 2 }), 2000, '127.0.0.3'))).toBe(REFUSED);
      expect(t.server.stats.rejectedByReason.get('udp: client over its rate limit')).toBe(11);
      const metrics = await (await fetch(`http://127.0.0.1:${t.http.port}/metrics`)).text();
      expect(metrics).toMatch(/hushdns_rejected_packets_total\{protocol="udp",reason="client over its rate limit"\} 11/);
    } finally {
      await t.stop();
    }
  });

  it('exempts loopback clients (127.0.0.0/8, ::1) from the rate limit by default', async () => {
    const t = await startTestServer({ lists: LISTS, flags: { 'rate-limit': 20, 'rate-limit-window': '60s' } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 30; i++) codes.push(rcodeOf(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('ads.example.org', 'A'), 2000, '127.0.0.3')));
      for (let i = 0; i < 25; i++) codes.push(rcodeOf(await udpExchange('::1', t.udp6!.port, makeQuery('ads.example.org', 'A'))));
      expect(codes.filter((c) => c !== NOERROR)).toEqual([]);
      expect(t.server.stats.rejectedByReason.size).toBe(0);
    } finally {
      await t.stop();
    }
  });

  // Every address this host can send from is loopback, so a LAN client cannot be faked over a
  // socket; the server's own gate, with the same ACL and limiter it builds, shows the split.
  it('rate-limits LAN clients with the exemption on, and decides "loopback" by the whole 127/8, ::1 and their v4-mapped form', () => {
    let limited = 0;
    const gate = new ClientGate({ acl: new ClientAcl(['127.0.0.0/8', '::1/128', '192.168.0.0/16']), limiter: new RateLimiter(3, 60_000), limitLoopback: false, onRateLimited: () => limited++ });
    const verdicts = (address: string) => Array.from({ length: 5 }, () => gate.check(address, 'udp'));
    expect(verdicts('192.168.1.20')).toEqual([null, null, null, 'rate-limited', 'rate-limited']);
    expect(verdicts('::ffff:192.168.1.21')).toEqual([null, null, null, 'rate-limited', 'rate-limited']);
    for (const loopback of ['127.0.0.1', '127.12.0.3', '::1', '::ffff:127.0.0.1']) expect(verdicts(loopback), loopback).toEqual([null, null, null, null, null]);
    expect(gate.check('10.0.0.5', 'udp')).toBe('outside-allow-clients');
    expect(limited).toBe(4);
  });
});

describe('the LAN: local records and conditional forwarding', () => {
  it('answers the user’s own records before any list, and sends LAN names and private reverse lookups to the router only', async () => {
    const router = await startFakeUpstream();
    const config = {
      'local-records': [
        { name: 'nas.home.example', type: 'A', value: '192.168.1.10' },
        { name: 'ads.example.org', type: 'A', value: '192.168.1.11' },
        { name: 'tv.home.example', type: 'CNAME', value: 'nas.home.example' },
        { name: 'nas.home.example', type: 'AAAA', value: 'fd00::10' },
      ],
    };
    const t = await startTestServer({ lists: LISTS, ipv6: false, config, flags: { 'local-domain': 'lan', 'local-upstream': `udp://127.0.0.1:${router.port}` } });
    try {
      const q = (name: string, type: string) => udpExchange('127.0.0.1', t.udp4.port, makeQuery(name, type));
      expect(addressesOf(await q('nas.home.example', 'A'))).toEqual(['192.168.1.10']);
      expect(addressesOf(await q('nas.home.example', 'AAAA'))).toEqual(['fd00::10']);
      expect(addressesOf(await q('ads.example.org', 'A')), 'a local record beats the blocklist').toEqual(['192.168.1.11']);
      const cname = decode(await q('tv.home.example', 'A'));
      expect(cname.answers.map((a: { type: number }) => a.type)).toEqual([5, 1]);
      router.set('printer.lan', { a: ['192.168.1.50'] });
      expect(addressesOf(await q('printer.lan', 'A'))).toEqual(['192.168.1.50']);
      await q('50.1.168.192.in-addr.arpa', 'PTR');
      expect(router.queriesFor('printer.lan')).toHaveLength(1);
      expect(router.queriesFor('50.1.168.192.in-addr.arpa')).toHaveLength(1);
      expect(t.upstream.queriesFor('printer.lan')).toHaveLength(0);
      expect(t.upstream.queriesFor('50.1.168.192.in-addr.arpa')).toHaveLength(0);
      expect(rcodeOf(await q('laptop.local', 'A')), 'mDNS names never leave the host').toBe(NXDOMAIN);
      expect(router.queriesFor('laptop.local')).toHaveLength(0);
    } finally {
      await t.stop();
      await router.stop();
    }
  });

  it('resolves a local CNAME to a public name through the rest of the chain: forwarded, cached, or blocked', async () => {
    const config = {
      'local-records': [
        { name: 'shop.home.example', type: 'CNAME', value: 'www.public.example' },
        { name: 'ad-alias.home.example', type: 'CNAME', value: 'cdn.ads.example.org' },
        { name: 'two-hops.home.example', type: 'CNAME', value: 'shop.home.example' },
      ],
    };
    const t = await startTestServer({ lists: LISTS, ipv6: false, config });
    try {
      t.upstream.set('www.public.example', { cname: ['edge.cdn.example'], a: ['198.51.100.70'] });
      const q = (name: string, type: string, opts = {}) => udpExchange('127.0.0.1', t.udp4.port, makeQuery(name, type, opts));
      const shop = decode(await q('shop.home.example', 'A'));
      expect(shop.answers.map((a: { name: string; type: number }) => [a.name, a.type])).toEqual([
        ['shop.home.example', 5],
        ['www.public.example', 5],
        ['edge.cdn.example', 1],
      ]);
      expect(shop.answers[2].address).toBe('198.51.100.70');
      expect(shop.questions[0].name).toBe('shop.home.example');
      const twoHops = decode(await q('two-hops.home.example', 'A'));
      expect(twoHops.answers.map((a: { type: number }) => a.type)).toEqual([5, 5, 5, 1]);
      expect(t.upstream.queriesFor('www.public.example'), 'the second time from the cache').toHaveLength(1);
      expect(t.upstream.queriesFor('shop.home.example'), 'the local name never leaves').toHaveLength(0);

      const blocked = await q('ad-alias.home.example', 'A');
      expect(addressesOf(blocked)).toEqual(['0.0.0.0']);
      expect(decode(blocked).answers[0].type).toBe(5);
      expect(edeOf(blocked)?.code).toBe(15);
      expect(t.upstream.queriesFor('cdn.ads.example.org')).toHaveLength(0);

      t.upstream.set('www.public.example', { rcode: 'NXDOMAIN', soa: { zone: 'public.example', minimum: 30 } });
      t.server.cache.clear();
      const gone = decode(await q('shop.home.example', 'A'));
      expect(gone.header.rcode).toBe(NXDOMAIN);
      expect(gone.answers.map((a: { type: number }) => a.type)).toEqual([5]);
      expect(gone.authorities.map((a: { type: number }) => a.type)).toEqual([6]);
    } finally {
      await t.stop();
    }
  });

  it('answers NODATA with an SOA for a local name asked for a type it does not have (RFC 2308), and local PTRs end to end', async () => {
    const router = await startFakeUpstream();
    const config = {
      'local-records': [
        { name: 'nas.lan', type: 'A', value: '192.168.1.10', ttl: 120 },
        { name: '10.1.168.192.in-addr.arpa', type: 'PTR', value: 'nas.lan' },
        { name: 'tv.lan', type: 'CNAME', value: 'nas.lan' },
      ],
    };
    const t = await startTestServer({ lists: LISTS, ipv6: false, config, flags: { 'local-domain': 'lan', 'local-upstream': `udp://127.0.0.1:${router.port}` } });
    try {
      const q = (name: string, type: string) => udpExchange('127.0.0.1', t.udp4.port, makeQuery(name, type));
      const nodata = decode(await q('nas.lan', 'AAAA'));
      expect(nodata.header.rcode).toBe(NOERROR);
      expect(nodata.answers).toHaveLength(0);
      expect(nodata.authorities.map((a: { type: number; name: string }) => [a.type, a.name])).toEqual([[6, 'nas.lan']]);
      expect(nodata.authorities[0].ttl, "no longer than the name's own records").toBe(120);
      const viaCname = decode(await q('tv.lan', 'AAAA'));
      expect(viaCname.answers.map((a: { type: number }) => a.type)).toEqual([5]);
      expect(viaCname.authorities.map((a: { type: number }) => a.type)).toEqual([6]);

      const ptr = decode(await q('10.1.168.192.in-addr.arpa', 'PTR'));
      expect(ptr.answers.map((a: { type: number; domain?: string }) => [a.type, a.domain])).toEqual([[12, 'nas.lan']]);
      const resolver = new Resolver({ timeout: 2000, tries: 1 });
      resolver.setServers([`127.0.0.1:${t.udp4.port}`]);
      expect(await resolver.reverse('192.168.1.10')).toEqual(['nas.lan']);
      expect(await resolver.resolve4('nas.lan')).toEqual(['192.168.1.10']);
      expect(router.queries, 'local records are answered here, not by the router').toHaveLength(0);
      expect(t.upstream.queries).toHaveLength(0);
    } finally {
      await t.stop();
      await router.stop();
    }
  });

  it('stops start-up with a message naming a bad local record', async () => {
    const config = { 'local-records': [{ name: 'nas.lan', type: 'A', value: 'not-an-ip' }, { name: 'x.lan', type: 'MX', value: 'y' }, { name: 'tv.lan', type: 'CNAME', value: 'nas..lan' }] };
    await expect(startTestServer({ lists: LISTS, ipv6: false, config })).rejects.toThrow(
      /local-records\[0\]\.value = "not-an-ip": expected an IPv4 address[\s\S]*local-records\[1\]\.type[\s\S]*local-records\[2\]\.value = "nas\.\.lan": expected a host name/,
    );
  });
});

describe('upstream transports and prefetch from the server', () => {
  it('forwards over DNS-over-HTTPS (RFC 8484) when the upstream is an https:// or loopback http:// URL', async () => {
    const doh = await startFakeUpstream({ doh: 'http' });
    const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { upstream: [doh.dohUrl] } });
    try {
      doh.set('via-doh.example', { a: ['198.51.100.80'] });
      expect(addressesOf(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('via-doh.example', 'A')))).toEqual(['198.51.100.80']);
      const seen = doh.queriesFor('via-doh.example');
      expect(seen).toHaveLength(1);
      expect(seen[0].protocol).toBe('http');
      expect(seen[0].id).toBe(0); // RFC 8484 §4.1: ID 0 keeps HTTP caches useful
    } finally {
      await t.stop();
      await doh.stop();
    }
  });

  it('refreshes a popular cache entry shortly before it expires, so clients never wait for it', async () => {
    const t = await startTestServer({ lists: LISTS, ipv6: false });
    try {
      t.upstream.set('popular.example', { a: ['198.51.100.90'], ttl: 10 });
      const ask = () => udpExchange('127.0.0.1', t.udp4.port, makeQuery('popular.example', 'A'));
      await ask();
      await ask();
      await ask();
      expect(t.upstream.queriesFor('popular.example')).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 9_200)); // under 10 % of the TTL left
      const r = await ask(); // answered from cache, and triggers the refresh
      expect(addressesOf(r)).toEqual(['198.51.100.90']);
      await new Promise((r2) => setTimeout(r2, 300));
      expect(t.upstream.queriesFor('popular.example')).toHaveLength(2);
      await new Promise((r2) => setTimeout(r2, 1_000)); // past the original expiry
      const after = decode(await ask());
      expect(after.answers[0].ttl).toBeGreaterThan(7); // the refreshed entry, not a miss
      expect(t.upstream.queriesFor('popular.example')).toHaveLength(2);
    } finally {
      await t.stop();
    }
  }, 20_000);
});

describe('serve-stale client response timer (RFC 8767 §5)', () => {
  it('answers stale data after about 1.8 s when the upstream is slow, and the refresh still updates the cache', async () => {
    const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { 'upstream-timeout': '5s' } });
    try {
      const ask = () => udpExchange('127.0.0.1', t.udp4.port, makeQuery('slow-refresh.example', 'A'), 10_000);
      t.upstream.set('slow-refresh.example', { a: ['198.51.100.61'], ttl: 1 });
      expect(addressesOf(await ask())).toEqual(['198.51.100.61']);
      await sleep(1200);
      t.upstream.set('slow-refresh.example', { a: ['198.51.100.62'], ttl: 300, delayMs: 3000 });
      const stale = await ask();
      expect(addressesOf(stale), 'the stale data, not the slow fresh answer').toEqual(['198.51.100.61']);
      expect(edeOf(stale)?.code).toBe(3);
      expect(decode(stale).answers[0].ttl).toBe(30);
      await eventually('the background refresh', () => t.server.cache.get(cacheKey('slow-refresh.example', 1, false, false), Date.now())?.ttl === 300, 8000);
      const fresh = await ask();
      expect(addressesOf(fresh)).toEqual(['198.51.100.62']);
      expect(edeOf(fresh)).toBeNull();
      expect(t.upstream.queriesFor('slow-refresh.example')).toHaveLength(2);
    } finally {
      await t.stop();
    }
  }, 20_000);
});

describe('failed queries in the log', () => {
  it('logs the first failure, then one summary per interval with the count and the last error', async () => {
    const up = await startFakeUpstream();
    up.setDefault({ drop: true });
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('info', {}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    const s = await startWithOptions(up.udpUrl, { 'upstream-timeout': '200ms', 'serve-stale': false }, { log, failureSummaryMs: 1000 });
    const failed = () => lines.filter((l) => l.msg === 'query failed');
    const summaries = () => lines.filter((l) => l.msg === 'queries failed');
    try {
      const names = Array.from({ length: 12 }, (_, i) => `outage-${i}.example`);
      const answers = await Promise.all(names.map((n) => udpExchange('127.0.0.1', s.port, makeQuery(n, 'A'), 5000)));
      expect(answers.map(rcodeOf)).toEqual(names.map(() => SERVFAIL));
      expect(failed()).toHaveLength(1);
      expect(failed()[0]).toMatchObject({ level: 'warn', type: 1 });
      await eventually('the summary', () => summaries().reduce((n, l) => n + (l.count as number), 0) === 11);
      expect(summaries()[0]).toMatchObject({ level: 'warn', lastName: expect.stringMatching(/^outage-\d+\.example$/) });
      expect(summaries()[0].err).toBeTruthy();
      await sleep(2300); // a quiet interval ends the spell
      expect(rcodeOf(await udpExchange('127.0.0.1', s.port, makeQuery('after-the-spell.example', 'A'), 5000))).toBe(SERVFAIL);
      expect(failed().map((l) => l.name)).toEqual([expect.stringMatching(/^outage-/), 'after-the-spell.example']);
    } finally {
      await s.stop();
      await up.stop();
    }
  }, 20_000);
});

describe('graceful stop', () => {
  it('answers a TCP query in flight when SIGTERM arrives, then exits 0', async () => {
    // The helper fixes the upstream timeout at 500 ms: the first upstream is too slow for it, the
    // second answers 400 ms later, so the answer comes about a second after the query.
    const up = await startFakeUpstream();
    const second = await startFakeUpstream();
    const child = await startChildServer({ lists: LISTS, upstreamPort: up.port, flags: ['--upstream', second.udpUrl] });
    try {
      up.set('slow-stop.example', { delayMs: 2000 });
      second.set('slow-stop.example', { a: ['198.51.100.88'], delayMs: 400 });
      const pending = tcpExchange(child.dns.host, child.dns.port, [makeQuery('slow-stop.example', 'A')], 6000);
      await eventually('the query to reach the upstream', () => up.queriesFor('slow-stop.example').length === 1);
      const code = await child.stop('SIGTERM');
      const [answer] = await pending;
      expect(addressesOf(answer)).toEqual(['198.51.100.88']);
      expect(code).toBe(0);
      expect(child.logs.join('')).not.toMatch(/write after end|EPIPE|listener error/);
    } finally {
      await child.stop('SIGKILL');
      await up.stop();
      await second.stop();
    }
  }, 30_000);

  it('answers a TCP query in flight during stop() and takes no new connection meanwhile', async () => {
    const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { 'upstream-timeout': '3s' } });
    let stopped = false;
    try {
      t.upstream.set('slow-inproc.example', { a: ['198.51.100.89'], delayMs: 1000 });
      const pending = tcpExchange('127.0.0.1', t.udp4.port, [makeQuery('slow-inproc.example', 'A')], 5000);
      await eventually('the query to reach the upstream', () => t.upstream.queriesFor('slow-inproc.example').length === 1);
      const stopping = t.stop();
      stopped = true;
      await expect(tcpExchange('127.0.0.1', t.udp4.port, [makeQuery('ads.example.org', 'A')], 1000)).rejects.toThrow();
      expect(addressesOf((await pending)[0])).toEqual(['198.51.100.89']);
      await stopping;
    } finally {
      if (!stopped) await t.stop();
    }
  });
});

describe('DNS over HTTPS upstream from the server', () => {
  it('forwards over real https with HTTP/2, checking the certificate', async () => {
    const made = await makeTestCert();
    if (!made.ok) {
      console.warn(`DoH https test skipped: ${made.reason}`);
      return;
    }
    const doh: FakeUpstream = await startFakeUpstream({ doh: { key: made.cert.key, cert: made.cert.cert } });
    const s = await startWithOptions(doh.dohUrl, {}, { tlsCa: made.cert.cert });
    try {
      doh.set('via-https.example', { a: ['198.51.100.81'] });
      expect(addressesOf(await udpExchange('127.0.0.1', s.port, makeQuery('via-https.example', 'A')))).toEqual(['198.51.100.81']);
      const seen = doh.queriesFor('via-https.example');
      expect(seen.map((q) => [q.protocol, q.httpVersion, q.id])).toEqual([['https', '2.0', 0]]);
    } finally {
      await s.stop();
      await doh.stop();
    }
  });
});
