// Hostile TCP clients against the server process (RFC 7766 caps and deadlines): while each one
// misbehaves, a UDP client keeps asking a valid question and must be answered fast.
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { addressesOf, makeQuery, tcpExchange, udpExchange } from '../helpers/dns-client.js';
import { Attack, exited, MAX_VALID_MS } from './attack.js';
import { serverFixture } from './fixture.js';
import { VALID_ANSWER, VALID_NAME } from './udp-exchanger.js';

const framed = (q: Buffer) => Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('hostile TCP against the server process', () => {
  const fx = serverFixture({ 'ads.txt#adblock': `||${VALID_NAME}^\n` });

  /** A valid UDP query during the attack: answered right, and timed for the attack's row. */
  async function probe(attack: Attack): Promise<void> {
    const r = await attack.timed(() => udpExchange('127.0.0.1', fx.srv.dns.port, makeQuery(VALID_NAME, 'A'), 2000));
    expect(addressesOf(r)).toEqual([VALID_ANSWER]);
  }

  function judge(attack: Attack, sent: number, unit: 'connections' | 'bytes' | 'queries'): void {
    const row = attack.finish({ sent, unit });
    expect(exited(fx.srv)).toBe(false);
    expect(row.maxServerLatencyMs!, 'slowest valid UDP query during the attack, less CPU waits (ms)').toBeLessThan(MAX_VALID_MS);
  }

  it('drops a client whose length prefix promises more than it sends (read deadline)', async () => {
    const attack = new Attack(fx.srv, 'TCP length prefix longer than the data');
    const sock = connect({ host: '127.0.0.1', port: fx.srv.dns.port });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    const started = Date.now();
    const closed = new Promise<number>((r) => sock.once('close', () => r(Date.now() - started)));
    sock.write(Buffer.from([0x01, 0x00, 0x12, 0x34])); // says 256 bytes, sends 2
    await probe(attack);
    const after = await closed;
    judge(attack, 1, 'connections');
    expect(after, 'the server closed the connection after its read deadline (ms)').toBeLessThan(8000);
  }, 15_000);

  it('drops a slowloris client that trickles a query one byte at a time', async () => {
    const attack = new Attack(fx.srv, 'TCP slowloris (a byte every 250 ms)');
    const sock = connect({ host: '127.0.0.1', port: fx.srv.dns.port });
    await new Promise((r) => sock.once('connect', r));
    const bytes = framed(makeQuery('www.example.com', 'A'));
    let closedAt = 0;
    sock.on('close', () => (closedAt = Date.now()));
    sock.on('error', () => {});
    const started = Date.now();
    let sent = 0;
    for (let i = 0; i < bytes.length && closedAt === 0 && Date.now() - started < 9000; i++) {
      sock.write(bytes.subarray(i, i + 1));
      sent++;
      await sleep(250);
      if (i % 4 === 0) await probe(attack);
    }
    sock.destroy();
    judge(attack, sent, 'bytes');
    expect(closedAt, 'the server closed the trickling connection').toBeGreaterThan(0);
    expect(closedAt - started).toBeLessThan(7000);
  }, 15_000);

  it('caps connections and keeps serving UDP and new TCP clients once idle ones are gone', async () => {
    const attack = new Attack(fx.srv, '300 idle TCP connections (cap 256)');
    const sockets: Socket[] = [];
    let closedByServer = 0;
    for (let i = 0; i < 300; i++) {
      const s = connect({ host: '127.0.0.1', port: fx.srv.dns.port });
      s.on('error', () => {});
      s.on('close', () => closedByServer++);
      sockets.push(s);
    }
    await sleep(500);
    await probe(attack);
    expect(closedByServer, 'connections above the cap of 256 are closed at once').toBeGreaterThanOrEqual(300 - 256);
    for (const s of sockets) s.destroy();
    await sleep(200);
    const [a] = await attack.timed(() => tcpExchange('127.0.0.1', fx.srv.dns.port, [makeQuery(VALID_NAME, 'A')]));
    expect(addressesOf(a)).toEqual([VALID_ANSWER]);
    judge(attack, 300, 'connections');
  }, 15_000);

  it('keeps UDP answering while one client pipelines 20,000 queries and never reads', async () => {
    const attack = new Attack(fx.srv, '20,000 pipelined TCP queries, answers never read');
    const sock = connect({ host: '127.0.0.1', port: fx.srv.dns.port });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    sock.pause(); // never read: the server must stop reading from us instead of queueing forever
    sock.write(Buffer.concat(Array.from({ length: 20_000 }, () => framed(makeQuery(VALID_NAME, 'A')))));
    for (let i = 0; i < 10; i++) {
      await probe(attack);
      await sleep(50);
    }
    sock.destroy();
    judge(attack, 20_000, 'queries');
  }, 20_000);

  it('finishes answering after a half-close (FIN right after the query)', async () => {
    const attack = new Attack(fx.srv, 'TCP half-close after the query');
    const q = makeQuery(VALID_NAME, 'A');
    const answer = await attack.timed(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          const sock = connect({ host: '127.0.0.1', port: fx.srv.dns.port }, () => sock.end(framed(q)));
          let buf = Buffer.alloc(0);
          sock.on('data', (d: Buffer) => (buf = Buffer.concat([buf, d])));
          sock.on('end', () => resolve(buf.subarray(2)));
          sock.on('error', reject);
        }),
    );
    expect(addressesOf(answer)).toEqual([VALID_ANSWER]);
    judge(attack, 1, 'queries');
  });

  it('half-closes right after the length prefix: the server gives up on the message and stays up', async () => {
    const attack = new Attack(fx.srv, 'TCP half-close after the length prefix');
    const closed = await new Promise<boolean>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port: fx.srv.dns.port }, () => sock.end(Buffer.from([0x00, 0x20])));
      sock.on('error', () => resolve(true));
      sock.on('close', () => resolve(true));
      sock.resume();
    });
    expect(closed).toBe(true);
    await probe(attack);
    judge(attack, 1, 'connections');
  });
});
