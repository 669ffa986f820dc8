// Failing upstreams against the server process: two controllable fake upstreams, the first one
// misbehaving in every way issue 7 lists, then both failing, then churning. Every client query
// must get a right answer, a stale one, or SERVFAIL in time: never a forged address, never silence.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../bench/lib/names.js';
import { addressesOf, decode, edeOf, makeQuery, rcodeOf, udpExchange } from '../helpers/dns-client.js';
import { startChildServer, type ChildServer } from '../helpers/child-server.js';
import { SPOOFED_A, startFakeUpstream, type FakeBehaviour, type FakeUpstream } from '../helpers/fake-upstream.js';
import { Attack, exited } from './attack.js';
import { account, health, scrape } from './metrics.js';
import { PROFILE } from './profile.js';
import { startTruncatingUpstream } from './truncating-upstream.js';

const A_ADDR = '198.51.100.1';
const B_ADDR = '198.51.100.2';
/** The child server's --upstream-timeout (test/helpers/child-server.ts). */
const TIMEOUT_MS = 500;
/** Two upstreams: each may take its timeout once (server.ts budget), plus the answer deadline's second. */
const SERVFAIL_DEADLINE_MS = 2 * TIMEOUT_MS + 1000;
const STALE_EDE = 3;
const SERVFAIL = 2;

let serial = 0;
const fresh = (tag: string) => `q${++serial}.${tag}.example`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Fault {
  kind: string;
  behaviour: FakeBehaviour;
  /** Who must answer: the next upstream (failover) or the faulty one after all (TCP retry, forgeries ignored). */
  answeredBy: 'A' | 'B';
  /** Longest a client may wait, less CPU waits. */
  maxMs: number;
}

const FORGERIES = ['wrong-id', 'wrong-question', 'other-port'] as const;
const FAULTS: Fault[] = [
  { kind: 'drops everything', behaviour: { drop: true }, answeredBy: 'B', maxMs: TIMEOUT_MS + 300 },
  { kind: 'answers after 3 s', behaviour: { a: [A_ADDR], delayMs: 3000 }, answeredBy: 'B', maxMs: TIMEOUT_MS + 300 },
  { kind: 'sends only forgeries (wrong ID, wrong question, other port)', behaviour: { forged: [...FORGERIES], answer: false }, answeredBy: 'B', maxMs: TIMEOUT_MS + 300 },
  { kind: 'sends forgeries before its real answer', behaviour: { a: [A_ADDR], forged: [...FORGERIES] }, answeredBy: 'A', maxMs: 300 },
  { kind: 'returns garbage only', behaviour: { forged: ['garbage'], answer: false }, answeredBy: 'B', maxMs: TIMEOUT_MS + 300 },
  { kind: 'returns SERVFAIL', behaviour: { rcode: 'SERVFAIL' }, answeredBy: 'B', maxMs: 300 },
  { kind: 'returns REFUSED', behaviour: { rcode: 'REFUSED' }, answeredBy: 'B', maxMs: 300 },
  { kind: 'truncates UDP answers (TC=1), TCP works', behaviour: { a: [A_ADDR], truncateUdp: true }, answeredBy: 'A', maxMs: 300 },
];

describe('failing upstreams against the server process', () => {
  let a: FakeUpstream;
  let b: FakeUpstream;
  let srv: ChildServer;
  const addr = { A: A_ADDR, B: B_ADDR };

  const ask = (name: string, timeoutMs = 4000) => udpExchange('127.0.0.1', srv.dns.port, makeQuery(name, 'A'), timeoutMs);

  beforeAll(async () => {
    a = await startFakeUpstream();
    b = await startFakeUpstream();
    a.setDefault({ a: [A_ADDR] });
    b.setDefault({ a: [B_ADDR] });
    srv = await startChildServer({ lists: { 'ads.txt#adblock': '||ads.example.org^\n' }, upstreamPort: a.port, flags: ['--upstream', b.udpUrl, '--rate-limit', '0'] });
  });
  afterAll(async () => {
    const code = await srv?.stop();
    await a?.stop();
    await b?.stop();
    expect(code, 'the server exits cleanly on SIGTERM after the faults').toBe(0);
  });

  for (const f of FAULTS) {
    it(`the first upstream ${f.kind}: answered by ${f.answeredBy === 'B' ? 'the second' : 'the first'}, then the first recovers`, async () => {
      const attack = new Attack(srv, `upstream ${f.kind}`);
      a.setDefault(f.behaviour);
      const faulty = [fresh('fault'), fresh('fault')];
      const answers: string[][] = [];
      // Two in a row: a third failure would mark the first upstream down and stop asking it.
      for (const name of faulty) answers.push(addressesOf(await attack.timed(() => ask(name))));
      a.setDefault({ a: [A_ADDR] });
      const recovered = addressesOf(await attack.timed(() => ask(fresh('recovered'))));
      const faults = faulty.reduce((n, name) => n + a.queriesFor(name).filter((q) => q.protocol === 'udp').length, 0);
      const row = attack.finish({ sent: 3, unit: 'queries', upstreamFaults: faults });
      expect(answers, 'answers while the first upstream misbehaves').toEqual([[addr[f.answeredBy]], [addr[f.answeredBy]]]);
      expect(answers.flat()).not.toContain(SPOOFED_A);
      expect(recovered, 'the first upstream answers again once it behaves').toEqual([A_ADDR]);
      expect(faults, 'the first upstream was asked while it misbehaved').toBeGreaterThanOrEqual(2);
      if (f.behaviour.truncateUdp) expect(a.queriesFor(faulty[0]).map((q) => q.protocol), 'TC=1 over UDP, then the same question over TCP').toEqual(['udp', 'tcp']);
      expect(row.maxServerLatencyMs!, 'slowest answer less CPU waits (ms)').toBeLessThan(f.maxMs);
      expect(exited(srv)).toBe(false);
    });
  }

  it('serves names seen before stale (EDE 3) when every upstream drops, SERVFAILs or sends garbage', async () => {
    const attack = new Attack(srv, 'every upstream fails: stale answers');
    const modes: [string, FakeBehaviour][] = [
      ['drop', { drop: true }],
      ['servfail', { rcode: 'SERVFAIL' }],
      ['garbage', { forged: ['garbage'], answer: false }],
    ];
    const names = modes.map(([mode]) => `seen.${mode}.example`);
    for (const name of names) {
      a.set(name, { a: ['198.51.100.77'], ttl: 1 });
      expect(addressesOf(await ask(name))).toEqual(['198.51.100.77']);
    }
    await sleep(1200); // every TTL has run out
    modes.forEach(([, behaviour], i) => {
      a.set(names[i], behaviour);
      b.set(names[i], behaviour);
    });
    const answers = await Promise.all(names.map((name) => attack.timed(() => ask(name))));
    const faults = asked([a, b], names) - names.length; // less the first, good answer of each
    const row = attack.finish({ sent: names.length, unit: 'queries', upstreamFaults: faults });
    for (const [i, r] of answers.entries()) {
      expect(addressesOf(r), `${modes[i][0]}: the stale address`).toEqual(['198.51.100.77']);
      expect(decode(r).answers[0].ttl, `${modes[i][0]}: stale TTL (RFC 8767)`).toBe(30);
      expect(edeOf(r)?.code, `${modes[i][0]}: EDE Stale Answer`).toBe(STALE_EDE);
    }
    expect(row.maxServerLatencyMs!, 'a stale answer comes within the upstream budget (ms)').toBeLessThan(SERVFAIL_DEADLINE_MS);
  });

  it('answers SERVFAIL in time for a name never seen when every upstream is slow or silent', async () => {
    const attack = new Attack(srv, 'every upstream fails: new names');
    const cases: FakeBehaviour[] = [{ drop: true }, { a: [A_ADDR], delayMs: 3000 }];
    const codes: number[] = [];
    const names: string[] = [];
    for (const behaviour of cases) {
      a.setDefault(behaviour);
      b.setDefault(behaviour);
      names.push(fresh('unseen'));
      codes.push(rcodeOf(await attack.timed(() => ask(names[names.length - 1]))));
    }
    a.setDefault({ a: [A_ADDR] });
    b.setDefault({ a: [B_ADDR] });
    const row = attack.finish({ sent: cases.length, unit: 'queries', upstreamFaults: asked([a, b], names) });
    expect(codes).toEqual([SERVFAIL, SERVFAIL]);
    expect(row.maxServerLatencyMs!, 'SERVFAIL within the upstream budget (ms)').toBeLessThan(SERVFAIL_DEADLINE_MS);
  });

  it('recovers within 500 ms once an upstream comes back after every upstream was marked down', async () => {
    const attack = new Attack(srv, 'all upstreams down, then one back');
    a.setDefault({ drop: true });
    b.setDefault({ drop: true });
    // Three failed queries mark both upstreams down (failThreshold 3).
    const downNames = [fresh('down'), fresh('down'), fresh('down')];
    const down = await Promise.all(downNames.map((name) => ask(name).then(rcodeOf)));
    expect(down).toEqual([SERVFAIL, SERVFAIL, SERVFAIL]);
    const degraded = await health(srv.http);
    a.setDefault({ a: [A_ADDR] });
    const back = Date.now();
    let recoveredMs: number | null = null;
    let sent = 3;
    while (recoveredMs === null && Date.now() - back < 5000) {
      sent++;
      const name = fresh('back');
      void attack.timed(() => ask(name, 3000)).then(
        (r) => {
          if (recoveredMs === null && addressesOf(r)[0] === A_ADDR) recoveredMs = Date.now() - back;
        },
        () => {},
      );
      await sleep(25);
    }
    await sleep(100);
    const healthy = await health(srv.http);
    b.setDefault({ a: [B_ADDR] });
    attack.finish({ sent, unit: 'queries', upstreamFaults: asked([a, b], downNames), note: `answers again ${recoveredMs} ms after the upstream came back` });
    expect(degraded.warnings, 'health while every upstream is down').toContain('every upstream is failing');
    expect(recoveredMs, 'time from the upstream coming back to the first right answer (ms)').not.toBeNull();
    expect(recoveredMs!).toBeLessThan(500);
    expect(healthy.warnings).not.toContain('every upstream is failing');
  });

  it(`keeps every answer right, stale or SERVFAIL-in-time while both upstreams churn through faults for ${PROFILE.churnMs / 1000} s`, async () => {
    const attack = new Attack(srv, 'upstream churn');
    const rand = seededRandom(PROFILE.seed);
    // Real answers live one second, so popular names expire in the cache and need the upstreams
    // (or serve-stale) again and again while they churn.
    const menu: [string, (addr: string) => FakeBehaviour][] = [
      ['good', (x) => ({ a: [x], ttl: 1 })],
      ['slow 200 ms', (x) => ({ a: [x], ttl: 1, delayMs: 200 })],
      ['drop', () => ({ drop: true })],
      ['after 3 s', (x) => ({ a: [x], ttl: 1, delayMs: 3000 })],
      ['SERVFAIL', () => ({ rcode: 'SERVFAIL' })],
      ['REFUSED', () => ({ rcode: 'REFUSED' })],
      ['garbage', () => ({ forged: ['garbage'], answer: false })],
      ['forged only', () => ({ forged: [...FORGERIES], answer: false })],
      ['forged, then real', (x) => ({ a: [x], ttl: 1, forged: [...FORGERIES] })],
      ['TC=1', (x) => ({ a: [x], ttl: 1, truncateUdp: true })],
    ];
    const timeline: { at: number; a: string; b: string }[] = [];
    const popular = Array.from({ length: 20 }, (_, i) => `popular${i}.churn.example`);
    // Seen before the churn starts: from then on each has a cache entry to be served stale from.
    a.setDefault({ a: [A_ADDR], ttl: 1 });
    for (const name of popular) expect(addressesOf(await ask(name))).toEqual([A_ADDR]);
    const answeredAt = new Map<string, number>(popular.map((name) => [name, Date.now()]));
    const before = await scrape(srv.http);
    const started = Date.now();
    let churning = true;
    const churn = (async () => {
      while (churning) {
        const [ka, fa] = menu[Math.floor(rand() * menu.length)];
        const [kb, fb] = menu[Math.floor(rand() * menu.length)];
        a.setDefault(fa(A_ADDR));
        b.setDefault(fb(B_ADDR));
        timeline.push({ at: Date.now(), a: ka, b: kb });
        await sleep(200 + Math.floor(rand() * 300));
      }
    })();
    const outcomes = { right: 0, stale: 0, servfail: 0, wrong: [] as string[], silent: 0, lateServfail: 0, servfailSeenBefore: [] as string[] };
    // When each name first got a real answer: from then on it is in the cache, so never SERVFAIL.
    const client = async () => {
      while (Date.now() - started < PROFILE.churnMs) {
        const name = rand() < 0.5 ? popular[Math.floor(rand() * popular.length)] : fresh('churn');
        const t0 = Date.now();
        try {
          const r = await attack.timed(() => ask(name, SERVFAIL_DEADLINE_MS + 1000));
          const got = addressesOf(r);
          const real = got.length === 1 && (got[0] === A_ADDR || got[0] === B_ADDR);
          if (rcodeOf(r) === SERVFAIL) {
            outcomes.servfail++;
            if (Date.now() - t0 > SERVFAIL_DEADLINE_MS) outcomes.lateServfail++;
            const seen = answeredAt.get(name);
            if (seen !== undefined && seen < t0) outcomes.servfailSeenBefore.push(`${name} (answered ${t0 - seen} ms before)`);
          } else if (edeOf(r)?.code === STALE_EDE && real) outcomes.stale++;
          else if (real) {
            outcomes.right++;
            if (!answeredAt.has(name)) answeredAt.set(name, Date.now());
          } else outcomes.wrong.push(`${name}: rcode ${rcodeOf(r)} ${JSON.stringify(got)}`);
        } catch {
          outcomes.silent++;
        }
      }
    };
    await Promise.all([client(), client(), client(), client()]);
    churning = false;
    await churn;
    a.setDefault({ a: [A_ADDR] });
    b.setDefault({ a: [B_ADDR] });
    const server = account(before, await scrape(srv.http), Date.now() - started);
    // Faults as the upstreams saw them: every query one of them got while it misbehaved.
    const kindAt = (at: number, which: 'a' | 'b') => [...timeline].reverse().find((t) => t.at <= at)?.[which] ?? 'good';
    const faults = (['a', 'b'] as const).reduce(
      (n, which) => n + (which === 'a' ? a : b).queries.filter((q) => q.at >= started && !['good', 'slow 200 ms'].includes(kindAt(q.at, which))).length,
      0,
    );
    const finalAnswer = addressesOf(await ask(fresh('after-churn')));
    const total = outcomes.right + outcomes.stale + outcomes.servfail + outcomes.wrong.length + outcomes.silent;
    attack.finish({ sent: total, unit: 'queries', upstreamFaults: faults, note: `${outcomes.right} right, ${outcomes.stale} stale, ${outcomes.servfail} SERVFAIL; ${timeline.length} changes` });
    console.log(`upstream churn: ${JSON.stringify({ ...outcomes, wrong: outcomes.wrong.length, servfailSeenBefore: outcomes.servfailSeenBefore.length })}, ${faults} faulty upstream exchanges, ${timeline.length} behaviour changes; server: ${JSON.stringify(server)}`);
    expect(outcomes.wrong, 'answers with an address no upstream gave for real').toEqual([]);
    expect(outcomes.silent, 'queries the server never answered').toBe(0);
    expect(outcomes.servfailSeenBefore, 'SERVFAIL for a name answered before (serve-stale must answer it)').toEqual([]);
    expect(outcomes.lateServfail, `SERVFAIL later than ${SERVFAIL_DEADLINE_MS} ms`).toBe(0);
    expect(outcomes.right, 'most queries still get a real answer').toBeGreaterThan(0);
    expect(faults).toBeGreaterThan(0);
    expect(finalAnswer, 'once both behave, answers are right again').toHaveLength(1);
    expect(exited(srv)).toBe(false);
  }, PROFILE.timeout('churn'));
});

describe('an upstream that truncates over UDP and refuses TCP', () => {
  it('fails over to the next upstream when the TCP retry fails', async () => {
    const c = await startTruncatingUpstream();
    const b = await startFakeUpstream();
    b.setDefault({ a: [B_ADDR] });
    const srv = await startChildServer({ lists: { 'ads.txt#adblock': '||ads.example.org^\n' }, upstreamPort: c.port, flags: ['--upstream', b.udpUrl, '--rate-limit', '0'] });
    try {
      const attack = new Attack(srv, 'upstream TC=1 and TCP reset');
      const answers: string[][] = [];
      for (const name of [fresh('tc'), fresh('tc')]) answers.push(addressesOf(await attack.timed(() => udpExchange('127.0.0.1', srv.dns.port, makeQuery(name, 'A'), 4000))));
      const row = attack.finish({ sent: 2, unit: 'queries', upstreamFaults: c.udpQueries + c.tcpConnections });
      expect(answers).toEqual([[B_ADDR], [B_ADDR]]);
      expect(c.udpQueries, 'the truncating upstream was asked over UDP').toBeGreaterThanOrEqual(2);
      expect(c.tcpConnections, 'and retried over TCP').toBeGreaterThanOrEqual(2);
      expect(row.maxServerLatencyMs!).toBeLessThan(TIMEOUT_MS + 300);
    } finally {
      const code = await srv.stop();
      await c.stop();
      await b.stop();
      expect(code).toBe(0);
    }
  });
});

/** Queries the upstreams received for these names, over any protocol. */
function asked(upstreams: FakeUpstream[], names: string[]): number {
  return upstreams.reduce((n, u) => n + names.reduce((m, name) => m + u.queriesFor(name).length, 0), 0);
}
