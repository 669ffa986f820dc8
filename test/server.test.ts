// The whole server over real sockets: a table compiled from real list files, a fake upstream on
// 127.0.0.1, and real clients (raw packets decoded by dns2, Node's Resolver, dns2's clients).
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { Resolver } from 'node:dns/promises';
import dns2 from 'dns2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressesOf, decode, edeOf, findOpt, makeQuery, rcodeOf, tcpExchange, udpExchange } from './helpers/dns-client.js';
import { DEFAULT_A, startFakeUpstream } from './helpers/fake-upstream.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const LISTS = {
  'trackers.txt#hosts': '0.0.0.0 tracking.example.com\n0.0.0.0 TELEMETRY.Example.NET # upper case\n',
  'ads.txt#adblock': '||ads.example.org^\n@@||good.ads.example.org^\n||cloaked-tracker.example.net^\n',
};

const HAS_DIG = spawnSync('dig', ['-v']).status === 0;
const NOERROR = 0;
const FORMERR = 1;
const SERVFAIL = 2;
const NXDOMAIN = 3;
const NOTIMP = 4;
const REFUSED = 5;

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

    it('gets forwarded answers and NXDOMAIN for the DoH canary, over IPv6 too', async () => {
      expect((await dig(['+short', 'www.example.com'])).trim()).toBe(DEFAULT_A);
      expect(await dig(['use-application-dns.net'])).toMatch(/status: NXDOMAIN/);
      const v6 = (await run('dig', ['@::1', '-p', String(t.udp6!.port), '+short', '+time=2', '+tries=1', 'tracking.example.com'])).stdout;
      expect(v6.trim()).toBe('0.0.0.0');
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

  it('rate-limits one flooding client while another is served normally', async () => {
    const t = await startTestServer({ lists: LISTS, ipv6: false, flags: { 'rate-limit': 20, 'rate-limit-window': '60s', 'rate-limit-loopback': true } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 30; i++) codes.push(rcodeOf(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('ads.example.org', 'A'), 2000, '127.0.0.3')));
      expect(codes.filter((c) => c === REFUSED)).toHaveLength(10);
      const other = await udpExchange('127.0.0.1', t.udp4.port, makeQuery('ads.example.org', 'A'), 2000, '127.0.0.4');
      expect(rcodeOf(other)).toBe(NOERROR);
    } finally {
      await t.stop();
    }
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

  it('stops start-up with a message naming a bad local record', async () => {
    const config = { 'local-records': [{ name: 'nas.lan', type: 'A', value: 'not-an-ip' }, { name: 'x.lan', type: 'MX', value: 'y' }] };
    await expect(startTestServer({ lists: LISTS, ipv6: false, config })).rejects.toThrow(/local-records\[0\]\.value = "not-an-ip": expected an IPv4 address[\s\S]*local-records\[1\]\.type/);
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
