// Who gets answered, and how much: a real flood from one address against the per-client rate
// limit while another client is served normally at the same time (each in a process of its own),
// and no amplification: refused and rate-limited answers are never larger than the query.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, makeQuery, rcodeOf, udpExchange } from '../helpers/dns-client.js';
import { startChildServer, type ChildServer } from '../helpers/child-server.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { Attack, exited, MAX_VALID_MS } from './attack.js';
import { startLoad } from './load.js';
import { PROFILE } from './profile.js';
import { VALID_ANSWER, VALID_NAME } from './udp-exchanger.js';

const LISTS = { 'ads.txt#adblock': `||${VALID_NAME}^\n` };
const REFUSED = 5;
const LIMIT = 200;
const WINDOW_S = 2;

describe('access control under attack, against the server process', () => {
  let upstream: FakeUpstream;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
  });
  afterAll(async () => {
    await upstream?.stop();
  });

  it(`holds the rate limit (${LIMIT} per ${WINDOW_S} s) against a concurrent flood from 127.0.0.3 while 127.0.0.4 is served normally`, async () => {
    const srv = await startChildServer({ lists: LISTS, upstreamPort: upstream.port, flags: ['--rate-limit', String(LIMIT), '--rate-limit-window', `${WINDOW_S}s`, '--rate-limit-loopback'] });
    try {
      const target = { host: '127.0.0.1', port: srv.dns.port };
      const attack = new Attack(srv, `rate-limit flood from one address (${LIMIT}/${WINDOW_S} s)`, []);
      // 50 questions a second: well inside the limit, so every one must be answered.
      const prober = await startLoad({ ...target, bind: '127.0.0.4', mode: 'probe', name: VALID_NAME, expect: VALID_ANSWER, intervalMs: 20, timeoutMs: 2000, slowMs: 20 });
      attack.watchClient(prober.pid);
      const flood = await startLoad({ ...target, bind: '127.0.0.3', mode: 'flood', name: VALID_NAME, concurrency: 100, total: PROFILE.floodQueries, timeoutMs: 1000, maxMs: PROFILE.phaseMs('flood') });
      const f = await flood.done;
      const p = await prober.stop();
      attack.latency(Math.min(p.latency.maxMs, 20));
      for (const s of p.slow) attack.latency(s.ms, s.at);
      // A token bucket lets through its capacity, then its refill rate, for as long as the flood lasts.
      const allowed = LIMIT + (LIMIT / WINDOW_S) * (f.ms / 1000);
      const row = attack.finish({ sent: f.sent, unit: 'queries', note: `${f.noerror} answered, ${f.refused} refused, ${f.lost} unanswered in ${f.ms} ms; the other client: ${p.correct}/${p.sent} right` });
      console.log(`rate-limit flood: ${JSON.stringify(f)}; other client ${JSON.stringify({ sent: p.sent, correct: p.correct, wrong: p.wrong, lost: p.lost, latency: p.latency })}; allowed ${Math.round(allowed)}`);
      expect(exited(srv)).toBe(false);
      if (PROFILE.name === 'ci') expect(f.sent).toBe(PROFILE.floodQueries);
      expect(f.noerror, 'flood queries answered (within the token bucket)').toBeLessThanOrEqual(Math.ceil(allowed * 1.05));
      expect(f.noerror, 'the flooder gets its share first').toBeGreaterThanOrEqual(LIMIT);
      expect(f.refused).toBeGreaterThan(f.sent / 2);
      expect(f.other, 'answers other than NOERROR and REFUSED').toBe(0);
      expect(f.maxRefusedExcessBytes!, 'a REFUSED answer is never larger than its query').toBeLessThanOrEqual(0);
      expect(p.lost, 'the other client: unanswered').toBe(0);
      expect(p.wrong, `the other client: wrong answers (first: ${p.firstWrong})`).toBe(0);
      expect(row.maxServerLatencyMs!, 'the other client during the flood, less CPU waits (ms)').toBeLessThan(MAX_VALID_MS);
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  }, PROFILE.timeout('flood'));

  it('answers outsiders and rate-limited clients with packets never larger than the query, and ANY minimally (RFC 8482)', async () => {
    const srv: ChildServer = await startChildServer({ lists: LISTS, upstreamPort: upstream.port, flags: ['--allow-clients', '127.0.0.1/32', '--rate-limit', '1', '--rate-limit-loopback'] });
    try {
      const attack = new Attack(srv, 'refused and rate-limited answers (amplification)');
      const queries = [makeQuery('example.com', 'ANY'), makeQuery('example.com', 'TXT', { edns: null }), makeQuery('a.example.com', 'A', { edns: { udpSize: 4096 } }), makeQuery('example.com', 48 /* DNSKEY */, { edns: { udpSize: 4096, do: true } })];
      const sizes: [number, number][] = [];
      for (const q of queries) {
        const refused = await attack.timed(() => udpExchange('127.0.0.1', srv.dns.port, q, 1000, '127.0.0.9'));
        expect(rcodeOf(refused), 'outside allow-clients').toBe(REFUSED);
        sizes.push([q.length, refused.length]);
      }
      // The one token of the rate limit goes to ANY; the next query is over the limit.
      const any = decode(await attack.timed(() => udpExchange('127.0.0.1', srv.dns.port, makeQuery('example.com', 'ANY'))));
      const q = makeQuery('c.example.com', 'A');
      const limited = await attack.timed(() => udpExchange('127.0.0.1', srv.dns.port, q));
      sizes.push([q.length, limited.length]);
      attack.finish({ sent: queries.length + 2, unit: 'queries' });
      expect(rcodeOf(limited), 'over the rate limit of 1').toBe(REFUSED);
      for (const [query, answer] of sizes) expect(answer, 'answer bytes vs query bytes').toBeLessThanOrEqual(query);
      expect(any.answers.map((a: { type: number }) => a.type), 'ANY: one HINFO record').toEqual([13]);
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  });
});
