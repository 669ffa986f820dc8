// Hostile UDP against the server process: each hand-made hostile datagram followed by a valid
// query that must be answered right, then a paced, seeded fuzz flood measured by a prober in a
// process of its own.
import { describe, expect, it } from 'vitest';
import { findOpt, rcodeOf } from '../helpers/dns-client.js';
import { Attack, exited, MAX_VALID_MS } from './attack.js';
import { serverFixture } from './fixture.js';
import type { AttackRow } from './summary.js';
import { hostileCases, RCODE, type Expect } from './hostile-packets.js';
import { startLoad } from './load.js';
import { account, scrape } from './metrics.js';
import { PROFILE } from './profile.js';
import { UdpExchanger, VALID_ANSWER, VALID_NAME } from './udp-exchanger.js';

function rcodeWithExtended(reply: Buffer): number {
  const opt = findOpt(reply);
  return opt < 0 ? rcodeOf(reply) : (reply[opt + 5] << 4) | rcodeOf(reply);
}

/** Checks one reply set against what the packet called for; returns a problem or null. */
function mismatch(pkt: Buffer, expected: Expect, replies: Buffer[]): string | null {
  if (expected.reply === 'none') return replies.length === 0 ? null : `expected no reply, got ${replies.length}`;
  if (replies.length > 1) return `expected at most one reply, got ${replies.length}`;
  const [reply] = replies;
  if (reply === undefined) return expected.reply === 'any' ? null : `expected RCODE ${expected.reply}, got no reply`;
  if (reply.length < 12 || (reply[2] & 0x80) === 0) return `reply is not a DNS response: ${reply.toString('hex')}`;
  const rcode = rcodeWithExtended(reply);
  if (expected.reply !== 'any' && rcode !== expected.reply) return `expected RCODE ${expected.reply}, got ${rcode}`;
  // Error replies carry at most the question and an OPT the query had: never larger than the query.
  if (rcode !== RCODE.NOERROR && reply.length > pkt.length) return `error reply of ${reply.length} bytes to a ${pkt.length}-byte packet (amplification)`;
  return null;
}

describe('hostile UDP against the server process', () => {
  const fx = serverFixture({ 'ads.txt#adblock': `||${VALID_NAME}^\n` });

  for (const c of hostileCases(PROFILE.seed)) {
    it(`${c.attack}: ${c.packets.length} packets, each followed by a valid query answered right`, async () => {
      const attack = new Attack(fx.srv, c.attack);
      let row: AttackRow | null = null;
      const ex = await UdpExchanger.open('127.0.0.1', fx.srv.dns.port);
      const problems: string[] = [];
      let sent = 0;
      try {
        for (const { pkt, expect: want, label } of c.packets) {
          const upstreamRound = typeof want.reply === 'number' && want.upstream === true;
          const at = Date.now();
          const r = await ex.step(pkt, upstreamRound);
          sent++;
          attack.latency(r.validMs, at);
          const problem = mismatch(pkt, want, r.replies);
          if (problem) problems.push(`${label}: ${problem}`);
        }
      } finally {
        ex.close();
        row = attack.finish({ sent, unit: 'packets' });
      }
      expect(problems).toEqual([]);
      expect(ex.strays.map((m) => m.subarray(0, 16).toString('hex')), 'replies that match no packet sent').toEqual([]);
      expect(exited(fx.srv)).toBe(false);
      expect(row.maxServerLatencyMs!, 'slowest valid query between hostile packets, less CPU waits (ms)').toBeLessThan(MAX_VALID_MS);
    });
  }

  it(`keeps answering a separate client within ${MAX_VALID_MS} ms through ${PROFILE.fuzzPackets.toLocaleString('en-US')} paced fuzz packets (seed ${PROFILE.seed})`, async () => {
    const before = await scrape(fx.srv.http);
    const started = performance.now();
    const target = { host: '127.0.0.1', port: fx.srv.dns.port };
    // The prober and the fuzzer are processes of their own: the latency is not this test runner's
    // event loop, and the flood is not paced by it. The attack watches the prober's CPU waits.
    const attack = new Attack(fx.srv, `UDP fuzz flood at ${PROFILE.fuzzRate.toLocaleString('en-US')}/s`, []);
    const prober = await startLoad({ ...target, mode: 'probe', name: VALID_NAME, expect: VALID_ANSWER, intervalMs: 10, timeoutMs: 2000, slowMs: 20 });
    attack.watchClient(prober.pid);
    const fuzz = await startLoad({ ...target, mode: 'fuzz', seed: PROFILE.seed, packets: PROFILE.fuzzPackets, ratePerSecond: PROFILE.fuzzRate, maxMs: PROFILE.phaseMs('fuzz') });
    const sent = await fuzz.done;
    const probe = await prober.stop();
    const server = account(before, await scrape(fx.srv.http), performance.now() - started);
    attack.latency(Math.min(probe.latency.maxMs, 20)); // the probes under 20 ms, not listed one by one
    for (const p of probe.slow) attack.latency(p.ms, p.at);
    const row = attack.finish({ sent: sent.sent, unit: 'packets', note: `probe p50 ${probe.latency.p50Ms.toFixed(1)} ms, p99 ${probe.latency.p99Ms.toFixed(1)} ms` });
    console.log(
      `udp fuzz: ${sent.sent} packets in ${sent.ms} ms (${sent.answers} answered); ${probe.sent} probes ${JSON.stringify(probe.latency)}; ` +
        `event-loop stalls: prober ${probe.selfStallMaxMs.toFixed(1)} ms, fuzzer ${sent.selfStallMaxMs.toFixed(1)} ms; server's own account: ${JSON.stringify(server)}; ` +
        `slowest less CPU waits ${row.maxServerLatencyMs?.toFixed(1)} ms, machine CPU pressure ${row.cpuPressure}`,
    );
    expect(exited(fx.srv)).toBe(false);
    if (PROFILE.name === 'ci') expect(sent.sent).toBe(PROFILE.fuzzPackets);
    expect(probe.lost, 'probes without an answer').toBe(0);
    expect(probe.wrong, `probes answered wrongly (first: ${probe.firstWrong})`).toBe(0);
    expect(probe.sent).toBeGreaterThan(50);
    expect(probe.slow.length, 'every slow probe is listed, so each one is attributed').toBeLessThan(20_000);
    expect(server.gcOver100ms, 'garbage-collection pauses over 100 ms in the server').toBe(0);
    // Bounded by design: the answer cache (20,000 entries, 32 MiB) and the query-log buffer fill up
    // with the forwarded fuzz names; the soak's million packets fill them to the top.
    expect(row.rssAfterMb! - row.rssBeforeMb!, 'RSS growth (MB)').toBeLessThan(PROFILE.name === 'ci' ? 50 : 100);
    expect(row.maxServerLatencyMs!, 'slowest probe during the fuzz, less the time the server or prober waited for a CPU (ms)').toBeLessThan(MAX_VALID_MS);
  }, PROFILE.timeout('fuzz'));
});
