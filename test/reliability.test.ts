// Hostile input against the real server over loopback: the server keeps answering valid queries
// quickly throughout, never crashes, and its memory stays bounded. Every flood is bounded in count
// and time.
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressesOf, makeQuery, rcodeOf, tcpExchange, udpExchange } from './helpers/dns-client.js';
import { startChildServer, type ChildServer } from './helpers/child-server.js';
import { startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.js';
import { startTestServer } from './helpers/server.js';

/** Seeded PRNG (mulberry32) so every run sends the same packets. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.RELIABILITY_SEED ?? 20261125);

describe('hostile input', () => {
  let upstream: FakeUpstream;
  let srv: ChildServer;
  const t = { udp4: { port: 0 } };
  const maxLatency: Record<string, number> = {};

  /** A valid blocked query must still be answered right, and fast; returns its latency. */
  async function probe(label: string, timeoutMs = 1000): Promise<number> {
    const started = performance.now();
    const r = await udpExchange('127.0.0.1', t.udp4.port, makeQuery('ads.example.org', 'A'), timeoutMs);
    const ms = performance.now() - started;
    expect(addressesOf(r), label).toEqual(['0.0.0.0']);
    maxLatency[label] = Math.max(maxLatency[label] ?? 0, ms);
    return ms;
  }

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    srv = await startChildServer({ lists: { 'ads.txt#adblock': '||ads.example.org^\n' }, upstreamPort: upstream.port, flags: ['--rate-limit', '0'] });
    t.udp4.port = srv.dns.port;
  });
  afterAll(async () => {
    console.log(`max probe latency during attacks (ms): ${JSON.stringify(Object.fromEntries(Object.entries(maxLatency).map(([k, v]) => [k, Math.round(v * 10) / 10])))}`);
    // TCP attacks must not delay UDP clients; the UDP flood itself queues the probe behind it.
    for (const [attack, ms] of Object.entries(maxLatency)) expect(ms, attack).toBeLessThan(attack === 'udp fuzz' ? 1000 : 100);
    const code = await srv?.stop();
    await upstream?.stop();
    expect(code, 'the server exits cleanly on SIGTERM after the attacks').toBe(0);
  });

  it(`survives 100,000 random and mutated UDP packets (seed ${SEED}) and still answers right afterwards`, async () => {
    const rand = prng(SEED);
    const valid = [makeQuery('www.example.com', 'A'), makeQuery('ads.example.org', 'AAAA', { edns: { do: true } }), makeQuery('example.net', 'HTTPS', { edns: null })];
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    sock.on('message', () => {}); // answers are read and dropped
    const rssBefore = srv.rssMb();
    const TOTAL = 100_000;
    let sent = 0;
    const startedAt = Date.now();
    while (sent < TOTAL && Date.now() - startedAt < 60_000) {
      const batch: Promise<void>[] = [];
      for (let i = 0; i < 500 && sent < TOTAL; i++, sent++) {
        let pkt: Buffer;
        const kind = sent % 4;
        if (kind === 0) {
          pkt = Buffer.alloc(Math.floor(rand() * 601));
          for (let j = 0; j < pkt.length; j++) pkt[j] = Math.floor(rand() * 256);
        } else if (kind === 1) {
          const base = valid[Math.floor(rand() * valid.length)];
          pkt = base.subarray(0, Math.floor(rand() * base.length));
        } else if (kind === 2) {
          pkt = Buffer.from(valid[Math.floor(rand() * valid.length)]);
          const flips = 1 + Math.floor(rand() * 4);
          for (let f = 0; f < flips; f++) pkt[Math.floor(rand() * pkt.length)] ^= 1 << Math.floor(rand() * 8);
        } else {
          // Structured nasties: pointer loops, counts 0/2/65535, long labels, QR=1, odd opcodes.
          pkt = Buffer.from(valid[0]);
          const v = Math.floor(rand() * 6);
          if (v === 0) pkt.writeUInt16BE([0, 2, 65535][Math.floor(rand() * 3)], 4);
          else if (v === 1) pkt.writeUInt16BE(0xc00c, 12); // a pointer to itself
          else if (v === 2) pkt[12] = 64 + Math.floor(rand() * 63); // a label longer than 63
          else if (v === 3) pkt[2] |= 0x80;
          else if (v === 4) pkt[2] = (pkt[2] & 0x87) | (Math.floor(rand() * 16) << 3);
          else pkt.writeUInt16BE(Math.floor(rand() * 65536), pkt.length - 13);
        }
        batch.push(new Promise((r) => sock.send(pkt, t.udp4.port, '127.0.0.1', () => r())));
      }
      await Promise.all(batch);
      // Paced at about 20,000 packets a second: a flood, but one the server can drain, so the
      // probe measures the server rather than a queue we filled faster than anything could empty.
      await new Promise((r) => setTimeout(r, 25));
      if (sent % 5_000 === 0) await probe('udp fuzz', 3000);
    }
    sock.close();
    expect(sent).toBe(TOTAL);
    await new Promise((r) => setTimeout(r, 200));
    await probe('udp fuzz', 3000);
    const grownMb = srv.rssMb() - rssBefore;
    console.log(`udp fuzz: ${sent} packets in ${Date.now() - startedAt} ms, server rss ${rssBefore.toFixed(0)} → ${srv.rssMb().toFixed(0)} MB`);
    expect(grownMb).toBeLessThan(50);
    expect(srv.proc.exitCode).toBeNull();
  }, 90_000);

  it('drops a TCP client whose length prefix promises more than it sends (read deadline)', async () => {
    const sock = connect({ host: '127.0.0.1', port: t.udp4.port });
    await new Promise((r) => sock.once('connect', r));
    sock.write(Buffer.from([0x01, 0x00, 0x12, 0x34])); // says 256 bytes, sends 2
    const closed = new Promise<number>((r) => {
      const started = Date.now();
      sock.once('close', () => r(Date.now() - started));
    });
    await probe('tcp short body');
    const after = await closed;
    expect(after).toBeLessThan(8000);
  }, 15_000);

  it('drops a slowloris client that trickles a query one byte at a time', async () => {
    const sock = connect({ host: '127.0.0.1', port: t.udp4.port });
    await new Promise((r) => sock.once('connect', r));
    const q = makeQuery('www.example.com', 'A');
    const framed = Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]);
    let closedAt = 0;
    sock.on('close', () => (closedAt = Date.now()));
    sock.on('error', () => {});
    const started = Date.now();
    for (let i = 0; i < framed.length && closedAt === 0 && Date.now() - started < 9000; i++) {
      sock.write(framed.subarray(i, i + 1));
      await new Promise((r) => setTimeout(r, 250));
      if (i % 4 === 0) await probe('slowloris');
    }
    expect(closedAt, 'the server closed the trickling connection').toBeGreaterThan(0);
    expect(closedAt - started).toBeLessThan(7000);
    sock.destroy();
  }, 15_000);

  it('caps TCP connections and keeps serving UDP and new TCP clients once idle ones are gone', async () => {
    const sockets: Socket[] = [];
    let closedByServer = 0;
    for (let i = 0; i < 300; i++) {
      const s = connect({ host: '127.0.0.1', port: t.udp4.port });
      s.on('error', () => {});
      s.on('close', () => closedByServer++);
      sockets.push(s);
    }
    await new Promise((r) => setTimeout(r, 500));
    await probe('idle connections');
    expect(closedByServer, 'connections above the cap of 256 are closed at once').toBeGreaterThanOrEqual(300 - 256);
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const [a] = await tcpExchange('127.0.0.1', t.udp4.port, [makeQuery('ads.example.org', 'A')]);
    expect(addressesOf(a)).toEqual(['0.0.0.0']);
  }, 15_000);

  it('keeps UDP answering while one TCP client pipelines 20,000 queries and never reads', async () => {
    const sock = connect({ host: '127.0.0.1', port: t.udp4.port });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    sock.pause(); // never read: the server must stop reading from us instead of queueing forever
    const q = makeQuery('ads.example.org', 'A');
    const framed = Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]);
    const all = Buffer.concat(Array.from({ length: 20_000 }, () => framed));
    sock.write(all);
    for (let i = 0; i < 10; i++) {
      await probe('tcp never reads');
      await new Promise((r) => setTimeout(r, 50));
    }
    sock.destroy();
  }, 20_000);

  it('finishes answering after a half-close (FIN right after the query)', async () => {
    const q = makeQuery('ads.example.org', 'A');
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port: t.udp4.port }, () => {
        sock.end(Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]));
      });
      let buf = Buffer.alloc(0);
      sock.on('data', (d) => (buf = Buffer.concat([buf, d])));
      sock.on('end', () => resolve(buf.subarray(2)));
      sock.on('error', reject);
    });
    expect(addressesOf(answer)).toEqual(['0.0.0.0']);
  });

  it('answers refused and rate-limited clients with packets never larger than the query (no amplification)', async () => {
    const limited = await startChildServer({
      lists: { 'ads.txt#adblock': '||ads.example.org^\n' },
      upstreamPort: upstream.port,
      flags: ['--allow-clients', '127.0.0.1/32', '--rate-limit', '1', '--rate-limit-loopback'],
    });
    try {
      for (const q of [makeQuery('example.com', 'ANY'), makeQuery('example.com', 'TXT', { edns: null }), makeQuery('a.example.com', 'A', { edns: { udpSize: 4096 } })]) {
        const refused = await udpExchange('127.0.0.1', limited.dns.port, q, 1000, '127.0.0.9');
        expect(rcodeOf(refused)).toBe(5);
        expect(refused.length).toBeLessThanOrEqual(q.length);
      }
      await udpExchange('127.0.0.1', limited.dns.port, makeQuery('b.example.com', 'A'));
      const q = makeQuery('c.example.com', 'A');
      const r = await udpExchange('127.0.0.1', limited.dns.port, q);
      expect(rcodeOf(r)).toBe(5);
      expect(r.length).toBeLessThanOrEqual(q.length);
    } finally {
      await limited.stop();
    }
  });
});

describe('failing upstreams', () => {
  it('fails over from an upstream that drops everything, ignores forged answers, and recovers', async () => {
    const first = await startFakeUpstream();
    const second = await startFakeUpstream();
    const t = await startTestServer({
      lists: { 'ads.txt#adblock': '||ads.example.org^\n' },
      ipv6: false,
      flags: { upstream: [`udp://127.0.0.1:${first.port}`, `udp://127.0.0.1:${second.port}`], 'upstream-timeout': '300ms' },
    });
    try {
      first.setDefault({ drop: true });
      second.setDefault({ a: ['198.51.100.2'] });
      let started = Date.now();
      expect(addressesOf(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('failover.example', 'A'), 3000))).toEqual(['198.51.100.2']);
      const failoverMs = Date.now() - started;
      expect(failoverMs).toBeGreaterThanOrEqual(250);
      expect(failoverMs).toBeLessThan(1500);

      // Forgeries before the real answer are ignored and counted as possible poisoning.
      second.setDefault({ a: ['198.51.100.3'], forged: ['wrong-id', 'wrong-question', 'other-port'] });
      first.setDefault({ drop: true });
      expect(addressesOf(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('forged.example', 'A'), 3000))).toEqual(['198.51.100.3']);
      const mismatched = t.server.pool.health().reduce((n, u) => n + u.counters.mismatched, 0);
      expect(mismatched).toBeGreaterThanOrEqual(3);

      // Garbage and SERVFAIL from one upstream: the other answers.
      first.setDefault({ forged: ['garbage'], answer: false });
      second.setDefault({ rcode: 'SERVFAIL' });
      const r = await udpExchange('127.0.0.1', t.udp4.port, makeQuery('both-bad.example', 'A'), 3000);
      expect(rcodeOf(r)).toBe(2);

      // Recovery: the first upstream comes back and answers again.
      first.setDefault({ a: ['198.51.100.1'] });
      second.setDefault({ drop: true });
      started = Date.now();
      expect(addressesOf(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('recovered.example', 'A'), 3000))).toEqual(['198.51.100.1']);
    } finally {
      await t.stop();
      await first.stop();
      await second.stop();
    }
  }, 20_000);

  it('answers SERVFAIL within the configured timeout when an upstream answers after 3 s', async () => {
    const t = await startTestServer({ lists: { 'ads.txt#adblock': '||ads.example.org^\n' }, ipv6: false, flags: { 'upstream-timeout': '400ms' } });
    try {
      t.upstream.set('slow.example', { a: ['198.51.100.9'], delayMs: 3000 });
      const started = Date.now();
      const r = await udpExchange('127.0.0.1', t.udp4.port, makeQuery('slow.example', 'A'), 5000);
      expect(rcodeOf(r)).toBe(2);
      expect(Date.now() - started).toBeLessThan(1600);
    } finally {
      await t.stop();
    }
  });
});

describe('table swaps under load', () => {
  it('swaps the table ten times under a steady query load without losing a query, each decision changing at its swap', async () => {
    const t = await startTestServer({ lists: { 'base.txt#adblock': '||ads.example.org^\n' }, ipv6: false, flags: { 'rate-limit': 0 } });
    let running = true;
    let sent = 0;
    let lost = 0;
    const load = (async () => {
      while (running) {
        const batch = Array.from({ length: 20 }, (_, i) =>
          udpExchange('127.0.0.1', t.udp4.port, makeQuery(i % 2 ? 'ads.example.org' : 'steady.example', 'A'), 3000).catch(() => {
            lost++;
          }),
        );
        sent += batch.length;
        await Promise.all(batch);
      }
    })();
    try {
      for (let swap = 1; swap <= 10; swap++) {
        const blocked = swap % 2 === 1;
        const before = addressesOf(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('flip.example', 'A')));
        expect(before, `before swap ${swap}`).toEqual(blocked ? ['192.0.2.1'] : ['0.0.0.0']);
        await t.recompile({ 'base.txt#adblock': `||ads.example.org^\n${blocked ? '||flip.example^\n' : ''}` });
        const after = addressesOf(await udpExchange('127.0.0.1', t.udp4.port, makeQuery('flip.example', 'A')));
        expect(after, `after swap ${swap}`).toEqual(blocked ? ['0.0.0.0'] : ['192.0.2.1']);
      }
    } finally {
      running = false;
      await load;
      await t.stop();
    }
    console.log(`swaps under load: ${sent} queries, ${lost} lost`);
    expect(sent).toBeGreaterThan(100);
    expect(lost).toBe(0);
  }, 60_000);
});
