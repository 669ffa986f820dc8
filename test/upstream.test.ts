import { once } from 'node:events';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import dns2, { type Resource } from 'dns2';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FrameDecoder, frame } from '../server/upstream/framing.js';
import { HttpsUpstream } from '../server/upstream/https.js';
import { createUpstream, UpstreamPool } from '../server/upstream/pool.js';
import { parseUpstream, UpstreamConfigError } from '../server/upstream/spec.js';
import { TlsUpstream } from '../server/upstream/tls.js';
import { UpstreamError, type Upstream } from '../server/upstream/types.js';
import { answersQuery, namesEqual, randomId } from '../server/upstream/wire.js';
import { DEFAULT_A, SPOOFED_A, startFakeUpstream, type FakeUpstream, type Forgery } from './helpers/fake-upstream.js';
import { makeTestCert } from './helpers/tls-cert.js';

const { Packet } = dns2;

function query(name: string, type: keyof typeof Packet.TYPE = 'A', opts: { id?: number; edns?: boolean; do?: boolean } = {}): Buffer {
  const packet = new Packet();
  packet.header.id = opts.id ?? 4242;
  packet.header.rd = 1;
  packet.questions.push(new Packet.Question(name, Packet.TYPE[type], Packet.CLASS.IN));
  if (opts.edns || opts.do) packet.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: 1232, doFlag: opts.do === true }) as Resource);
  return packet.toBuffer();
}

const parse = (msg: Buffer) => Packet.parse(msg);
const addresses = (msg: Buffer): (string | undefined)[] => parse(msg).answers.filter((r) => r.type === Packet.TYPE.A || r.type === Packet.TYPE.AAAA).map((r) => r.address);

async function rejection(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof UpstreamError) return err;
    throw err;
  }
  throw new Error('expected the promise to reject');
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function openUdpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}

// ------------------------------------------------------------------------------------------------

describe('parseUpstream', () => {
  it.each([
    ['192.0.2.53', { kind: 'udp', host: '192.0.2.53', port: 53, url: 'udp://192.0.2.53:53' }],
    ['192.0.2.53:5353', { kind: 'udp', host: '192.0.2.53', port: 5353, url: 'udp://192.0.2.53:5353' }],
    ['2001:db8::53', { kind: 'udp', host: '2001:db8::53', port: 53, url: 'udp://[2001:db8::53]:53' }],
    ['udp://[::1]:53', { kind: 'udp', host: '::1', port: 53, url: 'udp://[::1]:53' }],
    ['UDP://[0:0:0:0:0:0:0:1]:5300', { kind: 'udp', host: '::1', port: 5300, url: 'udp://[::1]:5300' }],
    ['tcp://192.0.2.53', { kind: 'tcp', host: '192.0.2.53', port: 53, url: 'tcp://192.0.2.53:53' }],
    ['tls://dns.example.org@192.0.2.53:853', { kind: 'tls', host: '192.0.2.53', port: 853, servername: 'dns.example.org', url: 'tls://dns.example.org@192.0.2.53:853' }],
    ['tls://192.0.2.53', { kind: 'tls', host: '192.0.2.53', port: 853, url: 'tls://192.0.2.53:853' }],
    ['https://dns.example.org/dns-query', { kind: 'https', host: 'dns.example.org', port: 443, servername: 'dns.example.org', path: '/dns-query', url: 'https://dns.example.org/dns-query' }],
    ['https://dns.example.org/resolve{?dns}', { kind: 'https', host: 'dns.example.org', port: 443, servername: 'dns.example.org', path: '/resolve', url: 'https://dns.example.org/resolve' }],
    ['https://192.0.2.53', { kind: 'https', host: '192.0.2.53', port: 443, path: '/dns-query', url: 'https://192.0.2.53/dns-query' }],
    ['http://127.0.0.1:8053/dns-query', { kind: 'https', host: '127.0.0.1', port: 8053, path: '/dns-query', url: 'http://127.0.0.1:8053/dns-query' }],
    ['http://[::1]:8053/dns-query', { kind: 'https', host: '::1', port: 8053, path: '/dns-query' }],
  ])('reads %s', (input, expected) => {
    const spec = parseUpstream(input);
    expect(spec).toMatchObject(expected);
    if (!('servername' in expected)) expect(spec.servername).toBeUndefined();
  });

  it.each([
    ['', 'empty'],
    ['udp://dns.example.org:53', 'not an IP address'],
    ['tls://dns.example.org', 'tls://dns.example.org@IP:853'],
    ['udp://192.0.2.53:0', 'port'],
    ['udp://192.0.2.53:65536', 'port'],
    ['192.0.2.53:dns', 'port'],
    ['udp://[::1', 'closing'],
    ['udp://name@192.0.2.53', 'only meaningful for tls'],
    ['tls://192.0.2.1@192.0.2.53', 'not an address'],
    ['udp://192.0.2.53/dns-query', 'no path'],
    ['quic://192.0.2.53', 'unknown scheme'],
    ['http://dns.example.org/dns-query', 'clear text'],
    ['https://user:secret@dns.example.org/dns-query', 'user name'],
  ])('rejects %j, naming the value and showing valid examples', (input, problem) => {
    let error: unknown;
    try {
      parseUpstream(input);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UpstreamConfigError);
    const e = error as UpstreamConfigError;
    expect(e.code).toBe('bad-upstream');
    expect(e.message).toContain(JSON.stringify(input));
    expect(e.message).toContain(problem);
    expect(e.message).toContain('Valid examples: ');
  });
});

// ------------------------------------------------------------------------------------------------

describe('wire checks', () => {
  const sent = Buffer.from(query('www.example.org'));

  it('accept a reply whose question differs only in letter case', () => {
    const reply = Buffer.from(query('WwW.ExAmPlE.oRg'));
    reply[2]! |= 0x80;
    expect(answersQuery(sent, reply)).toBe(true);
  });

  it('reject a reply for another name, another type, another ID or without QR', () => {
    const other = Buffer.from(query('www.example.net'));
    other[2]! |= 0x80;
    const otherType = Buffer.from(query('www.example.org', 'AAAA'));
    otherType[2]! |= 0x80;
    const otherId = Buffer.from(query('www.example.org', 'A', { id: 1 }));
    otherId[2]! |= 0x80;
    expect(answersQuery(sent, other)).toBe(false);
    expect(answersQuery(sent, otherType)).toBe(false);
    expect(answersQuery(sent, otherId)).toBe(false);
    expect(answersQuery(sent, Buffer.from(sent))).toBe(false);
  });

  it('compare names as written: a compressed question never matches, nor do pointer loops or cut labels', () => {
    // "www" + pointer to "example.org" placed after the question: the same name when pointers are
    // followed, but two octets shorter, and the caller copies its own question over the reply's.
    const target = Buffer.from([7, ...Buffer.from('example'), 3, ...Buffer.from('org'), 0]);
    const message = Buffer.concat([Buffer.alloc(12), Buffer.from([3, ...Buffer.from('WWW'), 0xc0, 12 + 6]), target]);
    expect(namesEqual(sent, 12, message, 12)).toBe(false);
    const plain = Buffer.concat([Buffer.alloc(12), Buffer.from([3, ...Buffer.from('WWW')]), target]);
    expect(namesEqual(sent, 12, plain, 12)).toBe(true);
    const loop = Buffer.concat([Buffer.alloc(12), Buffer.from([0xc0, 12])]);
    expect(namesEqual(sent, 12, loop, 12)).toBe(false);
    const labelLoop = Buffer.concat([Buffer.alloc(12), Buffer.from([1, 0x61, 0xc0, 12])]);
    expect(namesEqual(labelLoop, 12, labelLoop, 12)).toBe(false);
    const cut = Buffer.concat([Buffer.alloc(12), Buffer.from([3, 0x77, 0x77])]);
    expect(namesEqual(sent, 12, cut, 12)).toBe(false);
  });

  it('never throw on arbitrary bytes (fuzzed)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), (bytes) => {
        const reply = Buffer.from(bytes);
        answersQuery(sent, reply);
        if (reply.length > 12) namesEqual(sent, 12, reply, 12);
      }),
      { numRuns: 2000, seed: 20240501 },
    );
  });

  it('decode stream frames that arrive one byte at a time or several per chunk', () => {
    const a = query('a.example.org');
    const b = query('b.example.org');
    const stream = Buffer.concat([frame(a), frame(b)]);
    const got: Buffer[] = [];
    const bytewise = new FrameDecoder();
    for (let i = 0; i < stream.length; i++) bytewise.push(stream.subarray(i, i + 1), (m) => got.push(m));
    const whole = new FrameDecoder();
    whole.push(stream, (m) => got.push(m));
    expect(got.map((m) => m.equals(a) || m.equals(b))).toEqual([true, true, true, true]);
    expect(got[0]!.equals(a) && got[1]!.equals(b) && got[2]!.equals(a) && got[3]!.equals(b)).toBe(true);
  });

  it('draw IDs that cover the 16-bit space', () => {
    const ids = new Set<number>();
    for (let i = 0; i < 2000; i++) ids.add(randomId());
    expect(ids.size).toBeGreaterThan(1900);
    expect(Math.max(...ids)).toBeGreaterThan(60_000);
  });
});

// ------------------------------------------------------------------------------------------------

describe.each(['127.0.0.1', '::1'] as const)('plain DNS upstream on %s', (host) => {
  let fake: FakeUpstream;
  const upstreams: Upstream[] = [];
  const udp = (): Upstream => remember(createUpstream(parseUpstream(fake.udpUrl)));
  const tcp = (): Upstream => remember(createUpstream(parseUpstream(fake.tcpUrl)));
  const remember = (u: Upstream): Upstream => (upstreams.push(u), u);

  beforeAll(async () => {
    fake = await startFakeUpstream({ host });
  });
  afterAll(async () => {
    await Promise.all(upstreams.map((u) => u.close()));
    await fake.stop();
  });
  beforeEach(() => fake.reset());

  it('answers an A query over UDP and gives the caller its own ID back', async () => {
    fake.set('www.example.org', { a: ['192.0.2.10', '192.0.2.11'], ttl: 120 });
    const up = udp();
    const reply = await up.exchange(query('www.example.org', 'A', { id: 777 }), 1000);
    const packet = parse(reply);
    expect(packet.header.id).toBe(777);
    expect(packet.answers.map((r) => [r.address, r.ttl])).toEqual([
      ['192.0.2.10', 120],
      ['192.0.2.11', 120],
    ]);
    expect(fake.queries).toHaveLength(1);
    expect(fake.queries[0]!.protocol).toBe('udp');
    expect(up.counters).toMatchObject({ sent: 1, answered: 1, timeouts: 0, errors: 0, mismatched: 0 });
    expect(up.counters.latencyMsSum).toBeGreaterThan(0);
  });

  it('sends each of 20 queries with a fresh random ID from a fresh source port', async () => {
    const up = udp();
    for (let i = 0; i < 20; i++) await up.exchange(query(`q${i}.example.org`, 'A', { id: 4242 }), 1000);
    const ids = new Set(fake.queries.map((q) => q.id));
    const ports = fake.queries.map((q) => q.sourcePort);
    expect(fake.queries).toHaveLength(20);
    expect(ids.size).toBeGreaterThanOrEqual(18);
    expect(fake.queries.filter((q) => q.id === 4242).length).toBeLessThanOrEqual(1);
    expect(new Set(ports).size).toBeGreaterThanOrEqual(15);
    // Not a counter walking up by one either.
    const steps = ports.slice(1).filter((p, i) => p === ports[i]! + 1).length;
    expect(steps).toBeLessThan(5);
  });

  it('forwards the EDNS OPT record and its DO bit untouched', async () => {
    const up = udp();
    await up.exchange(query('signed.example.org', 'A', { do: true }), 1000);
    await up.exchange(query('plain.example.org', 'A'), 1000);
    expect(fake.queriesFor('signed.example.org')[0]).toMatchObject({ edns: true, do: true, udpSize: 1232 });
    expect(fake.queriesFor('plain.example.org')[0]).toMatchObject({ edns: false, do: false });
  });

  it('passes NXDOMAIN with its SOA through', async () => {
    fake.set('gone.example.org', { rcode: 'NXDOMAIN', soa: { ttl: 900, minimum: 45 } });
    const reply = parse(await udp().exchange(query('gone.example.org'), 1000));
    expect(reply.header.rcode).toBe(3);
    expect(reply.authorities[0]).toMatchObject({ type: Packet.TYPE.SOA, name: 'example.org', ttl: 900, minimum: 45 });
  });

  it('passes NODATA with its SOA, TXT records and CNAME chains through', async () => {
    fake.set('empty.example.org', { a: [], soa: { ttl: 120, minimum: 15 } });
    fake.set('text.example.org', { txt: ['v=spf1 -all', 'hello'] });
    fake.set('alias.example.org', { cname: ['one.example.net', 'two.example.net'], aaaa: ['2001:db8::7'] });
    const up = udp();
    const nodata = parse(await up.exchange(query('empty.example.org'), 1000));
    expect(nodata.header.rcode).toBe(0);
    expect(nodata.answers).toHaveLength(0);
    expect(nodata.authorities[0]).toMatchObject({ type: Packet.TYPE.SOA, ttl: 120, minimum: 15 });
    const text = parse(await up.exchange(query('text.example.org', 'TXT'), 1000));
    expect(text.answers.map((r) => r.data)).toEqual([['v=spf1 -all'], ['hello']]);
    const alias = parse(await up.exchange(query('alias.example.org', 'AAAA'), 1000));
    expect(alias.answers.map((r) => [r.name, r.domain ?? r.address])).toEqual([
      ['alias.example.org', 'one.example.net'],
      ['one.example.net', 'two.example.net'],
      ['two.example.net', '2001:db8::7'],
    ]);
  });

  it.each<Forgery>(['wrong-id', 'wrong-question', 'other-port', 'garbage', 'compressed-question'])(
    'ignores a forged reply (%s), counts it, and accepts the real answer that follows',
    async (forgery) => {
      fake.set('bank.example.org', { a: ['192.0.2.20'], forged: [forgery] });
      const up = udp();
      const reply = await up.exchange(query('bank.example.org'), 1000);
      expect(addresses(reply)).toEqual(['192.0.2.20']);
      expect(addresses(reply)).not.toContain(SPOOFED_A);
      expect(up.counters.mismatched).toBe(1);
      expect(up.counters.answered).toBe(1);
    },
  );

  it('keeps waiting after a forged reply and times out when no real answer comes', async () => {
    fake.set('bank.example.org', { forged: ['wrong-id', 'other-port'], answer: false });
    const up = udp();
    const { value: err, ms } = await timed(() => rejection(up.exchange(query('bank.example.org'), 250)));
    expect(err.code).toBe('timeout');
    expect(err.upstream).toBe(fake.udpUrl);
    expect(ms).toBeGreaterThanOrEqual(240);
    expect(ms).toBeLessThan(1000);
    expect(up.counters).toMatchObject({ mismatched: 2, timeouts: 1, answered: 0 });
  });

  it('times out over UDP within bounds when the upstream drops the query', async () => {
    fake.set('lost.example.org', { drop: true });
    const up = udp();
    const { value: err, ms } = await timed(() => rejection(up.exchange(query('lost.example.org'), 200)));
    expect(err).toMatchObject({ code: 'timeout' });
    expect(err.message).toContain('within 200 ms');
    expect(ms).toBeGreaterThanOrEqual(190);
    expect(ms).toBeLessThan(800);
  });

  it('closes its UDP socket on every path: answer, forgery, timeout, truncation', async () => {
    fake.set('lost.example.org', { drop: true });
    fake.set('tc.example.org', { truncateUdp: true });
    fake.set('forged.example.org', { forged: ['garbage'] });
    const up = udp();
    await sleep(20); // sockets of earlier tests finish closing
    const before = openUdpSockets();
    await Promise.allSettled([
      up.exchange(query('ok.example.org'), 500),
      up.exchange(query('lost.example.org'), 100),
      up.exchange(query('tc.example.org'), 500),
      up.exchange(query('forged.example.org'), 500),
    ]);
    await sleep(20);
    expect(openUdpSockets()).toBe(before);
  });

  it('asks again over TCP when the UDP answer is truncated', async () => {
    fake.set('tc.example.org', { a: ['192.0.2.30'], truncateUdp: true });
    const up = udp();
    const reply = await up.exchange(query('tc.example.org', 'A', { id: 99 }), 1000);
    expect(parse(reply).header).toMatchObject({ id: 99, tc: 0 });
    expect(addresses(reply)).toEqual(['192.0.2.30']);
    expect(fake.queries.map((q) => q.protocol)).toEqual(['udp', 'tcp']);
    expect(up.counters.truncatedRetries).toBe(1);
  });

  it('gets a large answer (over 1232 bytes) whole through the TCP retry', async () => {
    fake.set('big.example.org', { manyA: 150 });
    const up = udp();
    const reply = await up.exchange(query('big.example.org', 'A', { edns: true }), 1000);
    expect(reply.length).toBeGreaterThan(1232);
    expect(parse(reply).answers).toHaveLength(150);
    expect(up.counters.truncatedRetries).toBe(1);
  });

  it('answers over TCP', async () => {
    fake.set('www.example.org', { cname: ['edge.example.net'], a: ['192.0.2.40'] });
    const up = tcp();
    const reply = parse(await up.exchange(query('www.example.org', 'A', { id: 5 }), 1000));
    expect(reply.header.id).toBe(5);
    expect(reply.answers.map((r) => r.domain ?? r.address)).toEqual(['edge.example.net', '192.0.2.40']);
    expect(fake.queries[0]).toMatchObject({ protocol: 'tcp', name: 'www.example.org' });
    expect(fake.queries[0]!.id).not.toBe(5);
  });

  it('fails fast over TCP when the reply does not match, and times out when none comes', async () => {
    fake.set('bank.example.org', { forged: ['wrong-id'] });
    fake.set('lost.example.org', { drop: true });
    const up = tcp();
    const bad = await timed(() => rejection(up.exchange(query('bank.example.org'), 1000)));
    expect(bad.value.code).toBe('bad-response');
    expect(bad.ms).toBeLessThan(500);
    const slow = await timed(() => rejection(up.exchange(query('lost.example.org'), 200)));
    expect(slow.value.code).toBe('timeout');
    expect(slow.ms).toBeGreaterThanOrEqual(190);
    expect(slow.ms).toBeLessThan(800);
    expect(up.counters).toMatchObject({ mismatched: 1, errors: 1, timeouts: 1 });
  });
});

describe('plain DNS over TCP with an awkward server', () => {
  it('reassembles an answer that arrives in fragments', async () => {
    // A server that dribbles its reply out in three pieces.
    const server = createTcpServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        const msg = Buffer.from(chunk.subarray(2));
        msg[2]! |= 0x80;
        const framed = frame(msg);
        socket.write(framed.subarray(0, 1));
        setTimeout(() => socket.write(framed.subarray(1, 9)), 20);
        setTimeout(() => socket.end(framed.subarray(9)), 40);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const up = createUpstream(parseUpstream(`tcp://127.0.0.1:${port}`));
    try {
      const reply = await up.exchange(query('frag.example.org', 'A', { id: 31 }), 1000);
      expect(parse(reply).questions[0]!.name).toBe('frag.example.org');
      expect(parse(reply).header.id).toBe(31);
    } finally {
      server.close();
    }
  });

  it('reports a network error when nothing listens', async () => {
    const server = createTcpServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const err = await rejection(createUpstream(parseUpstream(`tcp://127.0.0.1:${port}`)).exchange(query('www.example.org'), 1000));
    expect(err.code).toBe('network');
    expect(err.message).toContain('ECONNREFUSED');
  });
});

// ------------------------------------------------------------------------------------------------

const certResult = await makeTestCert();
if (!certResult.ok) console.warn(`[upstream.test] skipping DoT and HTTPS DoH tests: ${certResult.reason}`);
const cert = certResult.ok ? certResult.cert : null;

describe.skipIf(cert === null)('DNS over TLS', () => {
  let fake: FakeUpstream;
  const opened: Upstream[] = [];
  const dot = (url: string, opts: { ca?: boolean; idleMs?: number } = {}): TlsUpstream => {
    const u = new TlsUpstream(parseUpstream(url), { ...(opts.ca === false ? {} : { tlsCa: cert!.cert }), ...(opts.idleMs ? { tlsIdleMs: opts.idleMs } : {}) });
    opened.push(u);
    return u;
  };

  beforeAll(async () => {
    fake = await startFakeUpstream({ dot: cert! });
  });
  afterAll(async () => {
    await Promise.all(opened.map((u) => u.close()));
    await fake.stop();
  });
  beforeEach(() => fake.reset());

  it('answers over TLS after checking the certificate against the server name', async () => {
    fake.set('www.example.org', { a: ['192.0.2.50'] });
    const up = dot(fake.dotUrl('dns.example.org'));
    const reply = await up.exchange(query('www.example.org', 'A', { id: 8 }), 2000);
    expect(parse(reply).header.id).toBe(8);
    expect(addresses(reply)).toEqual(['192.0.2.50']);
    expect(fake.queries[0]!.protocol).toBe('tls');
  });

  it('checks an IP-only upstream against the address in the certificate', async () => {
    const up = dot(`tls://127.0.0.1:${fake.dotPort}`);
    expect(addresses(await up.exchange(query('www.example.org'), 2000))).toEqual([DEFAULT_A]);
  });

  it('pipelines two queries on one connection and matches answers that come back out of order', async () => {
    fake.set('slow.example.org', { a: ['192.0.2.61'], delayMs: 300 });
    fake.set('fast.example.org', { a: ['192.0.2.62'] });
    const up = dot(fake.dotUrl());
    const order: string[] = [];
    const slow = up.exchange(query('slow.example.org', 'A', { id: 1 }), 2000).then((r) => (order.push('slow'), r));
    const fast = up.exchange(query('fast.example.org', 'A', { id: 2 }), 2000).then((r) => (order.push('fast'), r));
    const [slowReply, fastReply] = await Promise.all([slow, fast]);
    expect(order).toEqual(['fast', 'slow']);
    expect(addresses(slowReply)).toEqual(['192.0.2.61']);
    expect(parse(slowReply).header.id).toBe(1);
    expect(addresses(fastReply)).toEqual(['192.0.2.62']);
    expect(parse(fastReply).header.id).toBe(2);
    expect(up.connectionsOpened).toBe(1);
    expect(new Set(fake.queries.map((q) => q.connection)).size).toBe(1);
  });

  it('reuses the connection for later queries and reconnects after the server closes it', async () => {
    const up = dot(fake.dotUrl());
    await up.exchange(query('one.example.org'), 2000);
    await up.exchange(query('two.example.org'), 2000);
    expect(up.connectionsOpened).toBe(1);
    fake.closeConnections();
    await sleep(50);
    await up.exchange(query('three.example.org'), 2000);
    expect(up.connectionsOpened).toBe(2);
    expect(fake.queries.map((q) => q.connection)).toEqual([fake.queries[0]!.connection, fake.queries[0]!.connection, fake.queries[2]!.connection]);
    expect(fake.queries[2]!.connection).not.toBe(fake.queries[0]!.connection);
  });

  it('sends a query again on a fresh connection when the server closes a reused one under it', async () => {
    fake.set('slow.example.org', { a: ['192.0.2.64'], delayMs: 200 });
    const up = dot(fake.dotUrl());
    await up.exchange(query('warm.example.org'), 2000);
    const pending = up.exchange(query('slow.example.org', 'A', { id: 3 }), 2000);
    await sleep(50);
    fake.closeConnections();
    const reply = await pending;
    expect(parse(reply).header.id).toBe(3);
    expect(addresses(reply)).toEqual(['192.0.2.64']);
    expect(up.connectionsOpened).toBe(2);
    expect(fake.queriesFor('slow.example.org')).toHaveLength(2);
  });

  it('closes an idle connection and opens a new one for the next query', async () => {
    const up = dot(fake.dotUrl(), { idleMs: 100 });
    await up.exchange(query('one.example.org'), 2000);
    await sleep(300);
    await up.exchange(query('two.example.org'), 2000);
    expect(up.connectionsOpened).toBe(2);
  });

  it('ignores an answer with an unknown ID and takes the real one', async () => {
    fake.set('bank.example.org', { a: ['192.0.2.63'], forged: ['wrong-id'] });
    const up = dot(fake.dotUrl());
    expect(addresses(await up.exchange(query('bank.example.org'), 2000))).toEqual(['192.0.2.63']);
    expect(up.counters.mismatched).toBe(1);
  });

  it('times out when the server keeps quiet, and the connection still serves the next query', async () => {
    fake.set('lost.example.org', { drop: true });
    const up = dot(fake.dotUrl());
    const { value: err, ms } = await timed(() => rejection(up.exchange(query('lost.example.org'), 200)));
    expect(err.code).toBe('timeout');
    expect(ms).toBeGreaterThanOrEqual(190);
    expect(ms).toBeLessThan(800);
    expect(addresses(await up.exchange(query('www.example.org'), 2000))).toEqual([DEFAULT_A]);
    expect(up.connectionsOpened).toBe(1);
  });

  it('refuses a certificate for another name', async () => {
    const err = await rejection(dot(fake.dotUrl('other.example.net')).exchange(query('www.example.org'), 2000));
    expect(err.code).toBe('network');
    expect(err.message).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(fake.queries).toHaveLength(0);
  });

  it('refuses a certificate nobody vouches for', async () => {
    const err = await rejection(dot(fake.dotUrl(), { ca: false }).exchange(query('www.example.org'), 2000));
    expect(err.code).toBe('network');
    expect(err.message).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
    expect(fake.queries).toHaveLength(0);
  });
});

// ------------------------------------------------------------------------------------------------

describe('DNS over HTTP on 127.0.0.1', () => {
  let fake: FakeUpstream;
  let up: HttpsUpstream;

  beforeAll(async () => {
    fake = await startFakeUpstream({ doh: 'http' });
    up = new HttpsUpstream(parseUpstream(fake.dohUrl));
  });
  afterAll(async () => {
    await up.close();
    await fake.stop();
  });
  beforeEach(() => fake.reset());

  it('POSTs the query with ID 0 and gives the caller its ID back', async () => {
    fake.set('www.example.org', { a: ['192.0.2.70'] });
    const reply = await up.exchange(query('www.example.org', 'A', { id: 1234 }), 2000);
    expect(parse(reply).header.id).toBe(1234);
    expect(addresses(reply)).toEqual(['192.0.2.70']);
    expect(fake.queries[0]).toMatchObject({ protocol: 'http', id: 0, httpVersion: '1.1' });
  });

  it('sends concurrent queries on parallel HTTP/1.1 connections', async () => {
    fake.setDefault({ delayMs: 300 });
    const { ms } = await timed(() => Promise.all([1, 2, 3].map((i) => up.exchange(query(`p${i}.example.org`), 3000))));
    expect(ms).toBeLessThan(850); // one after another would take 900 ms
    expect(fake.queries).toHaveLength(3);
  });

  it('treats a non-200 status as a bad response', async () => {
    fake.set('www.example.org', { httpStatus: 502 });
    const err = await rejection(up.exchange(query('www.example.org'), 2000));
    expect(err.code).toBe('bad-response');
    expect(err.message).toContain('502');
  });

  it('treats a wrong content-type as a bad response', async () => {
    fake.set('www.example.org', { httpContentType: 'text/html' });
    const err = await rejection(up.exchange(query('www.example.org'), 2000));
    expect(err.code).toBe('bad-response');
    expect(err.message).toContain('text/html');
  });

  it('treats an answer to another question as a bad response and counts it', async () => {
    fake.set('www.example.org', { forged: ['wrong-question'] });
    const before = up.counters.mismatched;
    const err = await rejection(up.exchange(query('www.example.org'), 2000));
    expect(err.code).toBe('bad-response');
    expect(up.counters.mismatched).toBe(before + 1);
  });

  it('times out within bounds', async () => {
    fake.set('slow.example.org', { delayMs: 1000 });
    const { value: err, ms } = await timed(() => rejection(up.exchange(query('slow.example.org'), 200)));
    expect(err.code).toBe('timeout');
    expect(ms).toBeGreaterThanOrEqual(190);
    expect(ms).toBeLessThan(800);
  });
});

describe.skipIf(cert === null)('DNS over HTTPS with HTTP/2', () => {
  let fake: FakeUpstream;
  let up: HttpsUpstream;

  beforeAll(async () => {
    fake = await startFakeUpstream({ doh: cert! });
    up = new HttpsUpstream(parseUpstream(fake.dohUrl), { tlsCa: cert!.cert });
  });
  afterAll(async () => {
    await up.close();
    await fake.stop();
  });
  beforeEach(() => fake.reset());

  it('speaks HTTP/2 and shares one connection even among queries sent before it was up', async () => {
    const replies = await Promise.all(Array.from({ length: 5 }, (_, i) => up.exchange(query(`n${i}.example.org`, 'A', { id: i }), 3000)));
    expect(replies.map((r) => parse(r).header.id)).toEqual([0, 1, 2, 3, 4]);
    await up.exchange(query('later.example.org'), 3000);
    expect(fake.queries).toHaveLength(6);
    expect(fake.queries.every((q) => q.httpVersion === '2.0' && q.protocol === 'https')).toBe(true);
    expect(new Set(fake.queries.map((q) => q.connection)).size).toBe(1);
  });

  it('multiplexes: five slow queries take about as long as one', async () => {
    fake.setDefault({ delayMs: 300 });
    try {
      const { ms } = await timed(() => Promise.all(Array.from({ length: 5 }, (_, i) => up.exchange(query(`m${i}.example.org`), 3000))));
      expect(ms).toBeLessThan(1000); // one after another would take 1500 ms
    } finally {
      fake.setDefault({});
    }
  });

  it('refuses the server without the test CA', async () => {
    const untrusting = new HttpsUpstream(parseUpstream(fake.dohUrl));
    try {
      const err = await rejection(untrusting.exchange(query('www.example.org'), 2000));
      expect(err.code).toBe('network');
      expect(err.message).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
    } finally {
      await untrusting.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('upstream pool', () => {
  let first: FakeUpstream;
  let second: FakeUpstream;
  let third: FakeUpstream;
  const pools: UpstreamPool[] = [];
  const pool = (opts: Partial<ConstructorParameters<typeof UpstreamPool>[1]> = {}, fakes = [first, second]): UpstreamPool => {
    const p = new UpstreamPool(
      fakes.map((f) => parseUpstream(f.udpUrl)),
      { strategy: 'failover', timeoutMs: 200, ...opts },
    );
    pools.push(p);
    return p;
  };

  beforeAll(async () => {
    [first, second, third] = await Promise.all([startFakeUpstream(), startFakeUpstream(), startFakeUpstream()]);
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all([first.stop(), second.stop(), third.stop()]);
  });
  beforeEach(() => {
    first.reset();
    second.reset();
    third.reset();
    first.setDefault({ a: ['192.0.2.1'] });
    second.setDefault({ a: ['192.0.2.2'] });
    third.setDefault({ a: ['192.0.2.3'] });
  });

  it('answers from the first upstream when it is healthy', async () => {
    const answer = await pool().exchange(query('www.example.org'));
    expect(answer.upstream).toBe(first.udpUrl);
    expect(addresses(answer.response)).toEqual(['192.0.2.1']);
    expect(second.queries).toHaveLength(0);
  });

  it('fails over to the second upstream when the first drops everything, after about one timeout', async () => {
    first.setDefault({ drop: true });
    const answer = await pool({ timeoutMs: 250 }).exchange(query('www.example.org', 'A', { id: 55 }));
    expect(answer.upstream).toBe(second.udpUrl);
    expect(parse(answer.response).header.id).toBe(55);
    expect(addresses(answer.response)).toEqual(['192.0.2.2']);
    expect(answer.ms).toBeGreaterThanOrEqual(240);
    expect(answer.ms).toBeLessThan(700);
  });

  it('fails over straight away on SERVFAIL, and on REFUSED', async () => {
    first.setDefault({ rcode: 'SERVFAIL' });
    const p = pool({ timeoutMs: 1000 });
    const answer = await p.exchange(query('www.example.org'));
    expect(answer.upstream).toBe(second.udpUrl);
    expect(answer.ms).toBeLessThan(500);
    first.setDefault({ rcode: 'REFUSED' });
    expect((await p.exchange(query('www.example.org'))).upstream).toBe(second.udpUrl);
  });

  it('returns a SERVFAIL answer rather than an error when nothing better comes', async () => {
    first.setDefault({ rcode: 'SERVFAIL' });
    second.setDefault({ drop: true });
    const answer = await pool().exchange(query('broken.example.org', 'A', { id: 9 }));
    expect(parse(answer.response).header).toMatchObject({ rcode: 2, id: 9 });
    expect(answer.upstream).toBe(first.udpUrl);
  });

  it('throws all-failed naming each upstream and its cause when every upstream fails', async () => {
    first.setDefault({ drop: true });
    second.setDefault({ rcode: 'REFUSED' });
    const err = await rejection(pool().exchange(query('www.example.org')));
    expect(err.code).toBe('all-failed');
    expect(err.causes?.map((c) => [c.upstream, c.code])).toEqual([
      [first.udpUrl, 'timeout'],
      [second.udpUrl, 'refused'],
    ]);
    expect(err.message).toContain(first.udpUrl);
    expect(err.message).toContain(second.udpUrl);
  });

  it('stays within its total time budget and says which upstreams it had no time for', async () => {
    for (const f of [first, second, third]) f.setDefault({ drop: true });
    const p = pool({ timeoutMs: 150, budgetMs: 300 }, [first, second, third]);
    const { value: err, ms } = await timed(() => rejection(p.exchange(query('www.example.org'))));
    expect(err.causes?.map((c) => c.code)).toEqual(['timeout', 'timeout', 'skipped']);
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(900);
    expect(third.queries).toHaveLength(0);
  });

  it('marks a failing upstream down, skips it, and marks it up again once it answers after downMs', async () => {
    first.setDefault({ drop: true });
    const p = pool({ timeoutMs: 100, failThreshold: 2, downMs: 400 });
    await p.exchange(query('a.example.org'));
    expect(p.health()[0]).toMatchObject({ up: true, consecutiveFailures: 1 });
    await p.exchange(query('b.example.org'));
    expect(p.health()[0]).toMatchObject({ up: false, consecutiveFailures: 2 });
    expect(p.health()[1]).toMatchObject({ up: true, consecutiveFailures: 0 });

    // While down it is not asked at all: the answer comes from the second without waiting.
    const skipped = await p.exchange(query('c.example.org'));
    expect(skipped.upstream).toBe(second.udpUrl);
    expect(skipped.ms).toBeLessThan(90);
    expect(first.queriesFor('c.example.org')).toHaveLength(0);

    first.setDefault({ a: ['192.0.2.1'] });
    await sleep(450);
    const recovered = await p.exchange(query('d.example.org'));
    expect(recovered.upstream).toBe(first.udpUrl);
    expect(p.health()[0]).toMatchObject({ up: true, consecutiveFailures: 0 });
    expect(p.health()[0]!.counters).toMatchObject({ sent: 3, answered: 1, timeouts: 2 });
  });

  it('still tries upstreams that are all marked down', async () => {
    first.setDefault({ drop: true });
    second.setDefault({ drop: true });
    const p = pool({ timeoutMs: 80, failThreshold: 1, downMs: 60_000 });
    await rejection(p.exchange(query('a.example.org')));
    expect(p.health().map((h) => h.up)).toEqual([false, false]);
    second.setDefault({ a: ['192.0.2.2'] });
    const answer = await p.exchange(query('b.example.org'));
    expect(answer.upstream).toBe(second.udpUrl);
    expect(p.health().map((h) => h.up)).toEqual([false, true]);
  });

  it('in race mode asks several upstreams at once and takes the first good answer', async () => {
    first.setDefault({ a: ['192.0.2.1'], delayMs: 300 });
    second.setDefault({ rcode: 'SERVFAIL' });
    third.setDefault({ a: ['192.0.2.3'], delayMs: 20 });
    const p = pool({ strategy: 'race', timeoutMs: 1000 }, [first, second, third]);
    const answer = await p.exchange(query('www.example.org'));
    expect(answer.upstream).toBe(third.udpUrl);
    expect(addresses(answer.response)).toEqual(['192.0.2.3']);
    expect(answer.ms).toBeLessThan(250);
    expect([first, second, third].map((f) => f.queries.length)).toEqual([1, 1, 1]);
  });

  it('in race mode falls back to SERVFAIL, or throws all-failed, when no good answer comes', async () => {
    first.setDefault({ drop: true });
    second.setDefault({ rcode: 'SERVFAIL' });
    const p = pool({ strategy: 'race', timeoutMs: 150 });
    const answer = await p.exchange(query('www.example.org'));
    expect(parse(answer.response).header.rcode).toBe(2);
    second.setDefault({ drop: true });
    const err = await rejection(p.exchange(query('www.example.org')));
    expect(err.code).toBe('all-failed');
    expect(err.causes).toHaveLength(2);
  });

  it('mixes transports: a dead TCP upstream fails over to UDP on ::1', async () => {
    const v6 = await startFakeUpstream({ host: '::1' });
    try {
      const closed = createTcpServer();
      closed.listen(0, '127.0.0.1');
      await once(closed, 'listening');
      const { port } = closed.address() as AddressInfo;
      await new Promise((resolve) => closed.close(resolve));
      const p = new UpstreamPool([parseUpstream(`tcp://127.0.0.1:${port}`), parseUpstream(v6.udpUrl)], { strategy: 'failover', timeoutMs: 500 });
      pools.push(p);
      const answer = await p.exchange(query('www.example.org'));
      expect(answer.upstream).toBe('udp://[::1]:' + v6.port);
      expect(answer.ms).toBeLessThan(400);
      expect(p.health()[0]!.counters.errors).toBe(1);
    } finally {
      await v6.stop();
    }
  });
});
