// The reliability and security suite (issue 7): hostile packets, failing upstreams, crashes, table
// swaps, a read-only or full data directory, floods and HTTP abuse, each against the real server
// on loopback. `npm test` runs it after the rest with the CI profile (about a minute);
// `npm run soak` runs the same tests longer (test/reliability/profile.ts). Every attack adds a row
// to the summary printed at the end and written to test-results/reliability-summary.json.
import { cpus, loadavg } from 'node:os';
import { afterAll } from 'vitest';
import { PROFILE } from './reliability/profile.js';
import { attackRows, summaryMarkdown, writeSummary } from './reliability/summary.js';
import './reliability/hostile-udp.js';
import './reliability/hostile-tcp.js';
import './reliability/upstreams.js';
import './reliability/swaps.js';
import './reliability/data-dir.js';
import './reliability/access.js';
import './reliability/http.js';

afterAll(() => {
  const machine = { cpus: cpus().length, loadavg: loadavg().map((l) => Math.round(l * 100) / 100) };
  const path = writeSummary({ profile: PROFILE.name, seed: PROFILE.seed, finishedAt: new Date().toISOString(), machine });
  console.log(`\nreliability summary (${PROFILE.name} profile, seed ${PROFILE.seed}, ${machine.cpus} CPUs, load ${machine.loadavg.join(' ')}; JSON in ${path}):\n\n${summaryMarkdown()}\n`);
  const crashes = attackRows().reduce((n, r) => n + r.crashes, 0);
  console.log(`${attackRows().length} attacks, ${crashes} crashes`);
});
