// A data folder the server cannot write: read-only (an SD card the kernel remounted read-only
// after errors) or full, from the start or while it serves. DNS must keep answering, the log must
// say what is wrong in words a user understands, and GET /api/health must warn.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOCKLIST_FILE } from '../../common/schema.js';
import { addressesOf, makeQuery, udpExchange } from '../helpers/dns-client.js';
import { startChildServer, type ChildServer } from '../helpers/child-server.js';
import { DEFAULT_A, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { compileLists, tempDir } from '../helpers/server.js';
import { Attack, exited } from './attack.js';
import { health } from './metrics.js';
import { recordFailedStart } from './summary.js';
import { bindWrap, CARD_PROBLEM, failingCard, fill, MOUNT_PROBLEM, tmpfsWrap } from './mounts.js';

const LISTS = { 'ads.txt#adblock': '||ads.example.org^\n' };
const FLAGS = ['--rate-limit', '0', '--querylog-flush-interval', '200ms'];
const READ_ONLY = /read-only|readonly|EROFS/i;
const FULL = /full|no space|ENOSPC/i;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (MOUNT_PROBLEM) console.warn(`read-only and full data folder tests skipped: ${MOUNT_PROBLEM}`);
else if (CARD_PROBLEM) console.warn(`the read-only-while-serving test is skipped: ${CARD_PROBLEM}`);

interface Served {
  /** The first health warning naming the problem, null if none came within 3 s. */
  warning: string | null;
  /** Every health warning at the last look. */
  warnings: string[];
  status: string;
  afterMs: number;
  sent: number;
}

describe.skipIf(MOUNT_PROBLEM !== null)('a read-only or full data folder (own mount namespace per server)', () => {
  let upstream: FakeUpstream;
  let serial = 0;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
  });
  afterAll(async () => {
    await upstream?.stop();
  });

  /** A data folder holding a compiled table and nothing else. */
  async function compiledDir(): Promise<string> {
    const dir = tempDir();
    await compileLists(dir, LISTS);
    return dir;
  }

  /** An empty folder to mount something on, and a compiled table to copy into it. */
  async function mountPoint(): Promise<{ dir: string; table: string }> {
    const seed = await compiledDir();
    const dir = join(tempDir(), 'data');
    mkdirSync(dir);
    return { dir, table: join(seed, BLOCKLIST_FILE) };
  }

  /** Starts the server; one that exits before answering is recorded as a crash of `attack`. */
  async function start(dataDir: string, wrap: string[], attack?: string): Promise<ChildServer> {
    try {
      return await startChildServer({ lists: {}, dataDir, upstreamPort: upstream.port, flags: FLAGS, wrap });
    } catch (err) {
      if (attack) recordFailedStart(attack, err);
      throw err;
    }
  }

  /** A folder a server has run in (API token, query log), so a restart finds them there. */
  async function usedDir(): Promise<string> {
    const dir = await compiledDir();
    const srv = await start(dir, bindWrap(dir, false));
    await waitForFirstFlush(srv);
    expect(await srv.stop()).toBe(0);
    return dir;
  }

  /**
   * Queries (a blocked name and a new forwarded one each round, all answered right) until health
   * warns about `problem` or 3 s pass (the log writes every 200 ms).
   */
  async function serveUntilWarned(srv: ChildServer, attack: Attack, problem: RegExp): Promise<Served> {
    const started = Date.now();
    const r: Served = { warning: null, warnings: [], status: '', afterMs: 0, sent: 0 };
    while (r.warning === null && Date.now() - started < 3000) {
      for (let i = 0; i < 5; i++) {
        const blocked = await attack.timed(() => udpExchange('127.0.0.1', srv.dns.port, makeQuery('ads.example.org', 'A'), 2000));
        const name = `n${++serial}.example.net`;
        const forwarded = await attack.timed(() => udpExchange('127.0.0.1', srv.dns.port, makeQuery(name, 'A'), 2000));
        r.sent += 2;
        expect(addressesOf(blocked), 'a blocked name is still blocked').toEqual(['0.0.0.0']);
        expect(addressesOf(forwarded), `${name} is still forwarded`).toEqual([DEFAULT_A]);
      }
      const h = await health(srv.http);
      r.status = h.status;
      r.warnings = h.warnings;
      r.warning = h.warnings.find((w) => problem.test(w)) ?? null;
      if (r.warning === null) await sleep(100);
    }
    r.afterMs = Date.now() - started;
    return r;
  }

  function problemLines(srv: ChildServer): string[] {
    return srv.logs
      .join('')
      .split('\n')
      .filter((l) => /"level":"(warn|error)"/.test(l) || l.startsWith('hushdns:'));
  }

  async function waitForFirstFlush(srv: ChildServer): Promise<void> {
    const deadline = Date.now() + 5000;
    await udpExchange('127.0.0.1', srv.dns.port, makeQuery('ads.example.org', 'A'));
    while ((await health(srv.http)).querylog.rowsWritten === 0) {
      if (Date.now() > deadline) throw new Error('the query log wrote nothing within 5 s on a writable folder');
      await sleep(50);
    }
  }

  /** Records the row, then checks what every case must show: DNS up, a warning and a log line naming the problem. */
  function judge(attack: Attack, srv: ChildServer, r: Served, problem: RegExp, what: string): void {
    attack.finish({ sent: r.sent, unit: 'queries', note: r.warning ? `health warned after ${r.afterMs} ms` : `no health warning naming it; warnings: ${JSON.stringify(r.warnings)}` });
    expect(exited(srv), 'DNS kept running').toBe(false);
    // Soft: a failure shows every missing piece at once, for whoever fixes the server.
    expect.soft(r.warnings, `health warnings: one must say the data folder is ${what} (${problem})`).toContainEqual(expect.stringMatching(problem));
    expect.soft(r.status).toBe('degraded');
    const lines = problemLines(srv);
    expect.soft(lines.filter((l) => problem.test(l)), `a warn/error log line saying the folder is ${what}; the log has:\n${lines.join('\n')}`).not.toEqual([]);
  }

  it.skipIf(CARD_PROBLEM !== null)('turns read-only while serving (ext4 remounts itself read-only after an error): DNS answers, log and health say read-only', async () => {
    const { dir, table } = await mountPoint();
    const card = failingCard();
    let srv: ChildServer | null = null;
    try {
      srv = await start(dir, card.wrap(dir, [table]), 'data folder turns read-only while serving (ext4 error)');
      await waitForFirstFlush(srv);
      const attack = new Attack(srv, 'data folder turns read-only while serving (ext4 error)');
      card.fail();
      judge(attack, srv, await serveUntilWarned(srv, attack, READ_ONLY), READ_ONLY, 'read-only');
    } finally {
      if (srv) expect(await srv.stop(), 'SIGTERM still exits 0 on a read-only folder').toBe(0);
      card.release();
    }
  });

  it('restarts on a read-only folder (API token and query log already there): DNS answers, log and health say read-only', async () => {
    const dir = await usedDir();
    const srv = await start(dir, bindWrap(dir, true), 'restart on a read-only data folder');
    try {
      const attack = new Attack(srv, 'restart on a read-only data folder');
      judge(attack, srv, await serveUntilWarned(srv, attack, READ_ONLY), READ_ONLY, 'read-only');
    } finally {
      await srv.stop();
    }
  });

  it('starts on a fresh read-only folder (no API token yet): DNS answers, log and health say read-only', async () => {
    const dir = await compiledDir();
    const srv = await start(dir, bindWrap(dir, true), 'first start on a read-only data folder');
    try {
      const attack = new Attack(srv, 'first start on a read-only data folder');
      judge(attack, srv, await serveUntilWarned(srv, attack, READ_ONLY), READ_ONLY, 'read-only');
    } finally {
      await srv.stop();
    }
  });

  it('fills up while serving: DNS answers, log and health say full', async () => {
    const { dir, table } = await mountPoint();
    const srv = await start(dir, tmpfsWrap(dir, 2048, [table], false), 'data folder fills up while serving');
    try {
      await waitForFirstFlush(srv);
      const attack = new Attack(srv, 'data folder fills up while serving');
      fill(srv.pid, dir);
      judge(attack, srv, await serveUntilWarned(srv, attack, FULL), FULL, 'full');
    } finally {
      expect(await srv.stop(), 'SIGTERM still exits 0 on a full folder').toBe(0);
    }
  });

  it('starts on a full folder: DNS answers, log and health say full', async () => {
    const { dir, table } = await mountPoint();
    const srv = await start(dir, tmpfsWrap(dir, 1024, [table], true), 'start on a full data folder');
    try {
      const attack = new Attack(srv, 'start on a full data folder');
      judge(attack, srv, await serveUntilWarned(srv, attack, FULL), FULL, 'full');
    } finally {
      await srv.stop();
    }
  });
});
