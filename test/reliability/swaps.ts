// Table swaps and killed compiles against the server process. `hushdns compile` runs beside the
// server, as users run it, and the server notices the new table by itself (fs.watch and a poll).
// Every load query is checked: its decision must be that of a table that was live while it was in
// flight, and SERVFAIL or silence counts as lost.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { BLOCKLIST_FILE } from '../../common/schema.js';
import { addressesOf, makeQuery, rcodeOf, udpExchange } from '../helpers/dns-client.js';
import { compileLists } from '../helpers/server.js';
import { DEFAULT_A } from '../helpers/fake-upstream.js';
import { Attack, exited } from './attack.js';
import { serverFixture } from './fixture.js';
import { compile, logTimes, spawnCompile } from './compile-cli.js';
import { PROFILE } from './profile.js';

const FLIPS = Array.from({ length: 8 }, (_, i) => `flip${i}.example`);
const ALWAYS_BLOCKED = 'ads.example.org';
const NEVER_BLOCKED = 'steady.example';
const NAMES = [...FLIPS, ALWAYS_BLOCKED, NEVER_BLOCKED];
const SINKHOLE = '0.0.0.0';
const LIST_FILE = 'flip.txt';

/** Table version k blocks flip<i> when k + i is odd: every swap flips every one of them. */
function listFor(k: number): string {
  return [`||${ALWAYS_BLOCKED}^`, ...FLIPS.filter((_, i) => (k + i) % 2 === 1).map((n) => `||${n}^`)].join('\n') + '\n';
}

function expected(k: number, name: string): string {
  if (name === ALWAYS_BLOCKED) return SINKHOLE;
  const i = FLIPS.indexOf(name);
  return i >= 0 && (k + i) % 2 === 1 ? SINKHOLE : DEFAULT_A;
}

interface LoadResult {
  name: string;
  sent: number;
  received: number;
  /** The address answered, or why there was none. */
  got: string;
}

/** Queries the names round-robin from `lanes` concurrent clients until stopped; records every one. */
function steadyLoad(port: number, attack: Attack, lanes = 4) {
  const results: LoadResult[] = [];
  let running = true;
  const lane = async (offset: number) => {
    for (let n = offset; running; n += lanes) {
      const name = NAMES[n % NAMES.length];
      const sent = performance.now();
      const at = Date.now();
      let got: string;
      try {
        const r = await udpExchange('127.0.0.1', port, makeQuery(name, 'A'), 2000);
        got = rcodeOf(r) === 0 ? (addressesOf(r)[0] ?? 'NODATA') : `RCODE ${rcodeOf(r)}`;
        if (rcodeOf(r) === 0) attack.latency(performance.now() - sent, at);
      } catch {
        got = 'no answer';
      }
      results.push({ name, sent, received: performance.now(), got });
    }
  };
  const done = Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)));
  return {
    results,
    stop: async () => {
      running = false;
      await done;
      return results;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(10);
  }
}

describe('table swaps and killed compiles, against the server process', () => {
  const fx = serverFixture({ [`${LIST_FILE}#adblock`]: listFor(0) });
  let swapLog: number[];
  let refusedLog: number[];

  beforeAll(() => {
    swapLog = logTimes(fx.srv.proc, /blocklist swapped in/);
    refusedLog = logTimes(fx.srv.proc, /new blocklist refused/);
  });

  it(`swaps the table ${PROFILE.swaps} times under load: every query's decision is that of a table live while it was in flight, none lost`, async () => {
    const attack = new Attack(fx.srv, `${PROFILE.swaps} table swaps under load`);
    const compileStarted: number[] = [];
    const load = steadyLoad(fx.srv.dns.port, attack);
    const started = Date.now();
    let version = 0;
    try {
      await sleep(100);
      while (version < PROFILE.swaps && Date.now() - started < PROFILE.phaseMs('swaps')) {
        compileStarted.push(performance.now());
        // In this process (the same compiler `hushdns compile` runs) to keep the suite short; the
        // server still finds the new table by itself. The kill test below uses the command.
        await compileLists(fx.srv.dataDir, { [`${LIST_FILE}#adblock`]: listFor(version + 1) });
        await until(() => swapLog.length > version, 5000, `swap ${version + 1} (the server's "blocklist swapped in")`);
        version++;
        await sleep(100); // load on this version
      }
    } finally {
      await load.stop();
    }
    const results = load.results;
    // The table a query saw: at least every swap logged before it was sent, at most every swap
    // whose compile had started before its answer came.
    const wrong: string[] = [];
    let lost = 0;
    for (const r of results) {
      if (!(r.got === SINKHOLE || r.got === DEFAULT_A)) {
        lost++;
        continue;
      }
      const lo = swapLog.filter((t) => t < r.sent).length;
      const hi = compileStarted.filter((t) => t < r.received).length;
      let ok = false;
      for (let k = lo; k <= hi && !ok; k++) ok = expected(k, r.name) === r.got;
      if (!ok && wrong.length < 10) wrong.push(`${r.name} answered ${r.got}, sent after swap ${lo}, answered before swap ${hi + 1}`);
      else if (!ok) wrong.push('…');
    }
    const flipsSeen = FLIPS.map((n) => new Set(results.filter((r) => r.name === n).map((r) => r.got)).size);
    attack.finish({ sent: results.length, unit: 'queries', lostInSwaps: lost, note: `${version} swaps, ${wrong.length} wrong decisions` });
    console.log(`swaps under load: ${version} swaps, ${results.length} queries, ${lost} lost, ${wrong.length} wrong`);
    if (PROFILE.name === 'ci') expect(version).toBe(PROFILE.swaps);
    expect(version).toBeGreaterThan(0);
    expect(results.filter((r) => r.got !== SINKHOLE && r.got !== DEFAULT_A).slice(0, 5), 'lost queries (no answer, SERVFAIL, NODATA)').toEqual([]);
    expect(wrong, 'decisions no live table gave').toEqual([]);
    expect(swapLog.length, 'one swap per compile, no more').toBe(version);
    expect(refusedLog.length, 'no table refused').toBe(0);
    expect(flipsSeen.every((n) => n === 2), 'every flipping name was seen both blocked and allowed').toBe(true);
    for (const name of NAMES) expect(addressesOf(await udpExchange('127.0.0.1', fx.srv.dns.port, makeQuery(name, 'A'))), name).toEqual([expected(version, name)]);
  }, PROFILE.timeout('swaps'));

  it('SIGKILLs the compiler mid-write while the server serves from that folder: old table intact, no swap, later compiles still land', async () => {
    const attack = new Attack(fx.srv, 'compiler SIGKILLed mid-write');
    const live = join(fx.srv.dataDir, BLOCKLIST_FILE);
    const rulesBefore = ruleCount(live);
    const swapsBefore = swapLog.length;
    const lines: string[] = [];
    for (let i = 0; i < 150_000; i++) lines.push(`0.0.0.0 host${i}.tracker${i % 997}.example.com`);
    const big = lines.join('\n');
    // The staging file while lists are merged, then the final table while it is written.
    const killPoints: [string, (f: string) => boolean][] = [
      ['staging', (f) => f.endsWith('.stage.tmp')],
      ['final table', (f) => f.endsWith('.tmp') && !f.endsWith('.stage.tmp')],
    ];
    const decisions: string[] = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        for (const name of [ALWAYS_BLOCKED, 'host1.tracker1.example.com']) {
          const r = await attack.timed(() => udpExchange('127.0.0.1', fx.srv.dns.port, makeQuery(name, 'A'), 2000));
          decisions.push(`${name} ${addressesOf(r)[0] ?? `RCODE ${rcodeOf(r)}`}`);
        }
        await sleep(20);
      }
    })();
    const killedAt: string[] = [];
    try {
      for (const [phase, isTemp] of killPoints) {
        const child = spawnCompile(fx.srv.dataDir, 'big.txt', 'hosts', big);
        const ended = new Promise((r) => child.once('exit', r));
        const deadline = Date.now() + 60_000;
        while (child.exitCode === null && Date.now() < deadline) {
          const temp = readdirSync(fx.srv.dataDir).find((f) => f.startsWith(`${BLOCKLIST_FILE}.${child.pid}.`) && isTemp(f));
          if (temp && sizeOf(join(fx.srv.dataDir, temp)) > 256 * 1024) {
            child.kill('SIGKILL');
            killedAt.push(phase);
            break;
          }
          await sleep(5);
        }
        await ended;
      }
      await sleep(2500); // longer than the server's 2 s poll: it has looked at the folder since
    } finally {
      probing = false;
      await prober;
    }
    const leftovers = readdirSync(fx.srv.dataDir).filter((f) => f.endsWith('.tmp'));
    const integrity = integrityOf(live);
    const rulesAfter = ruleCount(live);
    const swapsAfterKills = swapLog.length;
    // A normal compile afterwards lands, and clears what the killed ones left behind.
    await compile(fx.srv.dataDir, LIST_FILE, 'adblock', `${listFor(0)}||after-kill.example^\n`);
    await until(() => swapLog.length > swapsAfterKills, 5000, 'the swap after the kills');
    const afterKill = addressesOf(await udpExchange('127.0.0.1', fx.srv.dns.port, makeQuery('after-kill.example', 'A')));
    const leftoversAfter = readdirSync(fx.srv.dataDir).filter((f) => f.endsWith('.tmp'));
    attack.finish({ sent: killedAt.length, unit: 'kills', note: `killed in ${killedAt.join(', ')}; ${decisions.length} queries meanwhile` });
    expect(killedAt, 'each compile was killed mid-write, not after it finished').toEqual(killPoints.map(([p]) => p));
    expect(integrity, 'PRAGMA integrity_check of the live table').toBe('ok');
    expect(rulesAfter, 'the live table still holds the old rules').toBe(rulesBefore);
    expect(swapsAfterKills, 'no swap while compiles were killed').toBe(swapsBefore);
    expect(refusedLog.length, 'the server never tried a broken table').toBe(0);
    expect(new Set(decisions), 'answers from the old table throughout').toEqual(new Set([`${ALWAYS_BLOCKED} ${SINKHOLE}`, `host1.tracker1.example.com ${DEFAULT_A}`]));
    expect(afterKill).toEqual([SINKHOLE]);
    expect(leftovers.length, 'the killed compiles left their temp files').toBeGreaterThan(0);
    expect(leftoversAfter, 'the next compile removed them').toEqual([]);
    expect(exited(fx.srv)).toBe(false);
  }, 120_000);
});

function ruleCount(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM rule').pluck().get() as number;
  } finally {
    db.close();
  }
}

function integrityOf(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma('integrity_check', { simple: true }) as string;
  } finally {
    db.close();
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0; // renamed or removed between the listing and the stat
  }
}
