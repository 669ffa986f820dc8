// `npm run soak`: the reliability suite (test/reliability.test.ts) with the soak profile — a
// million fuzz packets, a hundred table swaps, minutes of failing-upstream churn, a million-query
// flood — bounded by --duration (default 10 minutes; each phase gets its share and stops early,
// reporting what it did). Prints the summary table at the end; exits with vitest's status.
//
//   npm run soak -- [--duration 10m] [--seed N] [--fuzz-rate 10000]
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../common/config.js';
import { PACKAGE_ROOT } from '../common/paths.js';

const MAX_DURATION_MS = 6 * 3_600_000;
/** Starting servers, the tests without a phase of their own, stopping: on top of --duration. */
const GRACE_MS = 5 * 60_000;

function fail(message: string): never {
  process.stderr.write(`soak: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10m' },
    seed: { type: 'string' },
    'fuzz-rate': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write('npm run soak -- [--duration 10m] [--seed N] [--fuzz-rate 10000]\n');
  process.exit(0);
}
const durationMs = parseDuration(values.duration);
if (durationMs === null || durationMs <= 0 || durationMs > MAX_DURATION_MS) fail(`--duration ${JSON.stringify(values.duration)}: expected a duration such as 90s, 10m or 1h (at most 6h)`);
for (const [flag, v] of [['--seed', values.seed], ['--fuzz-rate', values['fuzz-rate']]] as const) {
  if (v !== undefined && !/^\d+$/.test(v)) fail(`${flag} ${JSON.stringify(v)}: expected a whole number`);
}

const summary = join(PACKAGE_ROOT, 'test-results', 'reliability-summary.md');
rmSync(summary, { force: true }); // never print a table an earlier run left behind
const vitest = join(PACKAGE_ROOT, 'node_modules', 'vitest', 'vitest.mjs');
const env: NodeJS.ProcessEnv = { ...process.env, RELIABILITY_PROFILE: 'soak', RELIABILITY_DURATION_MS: String(durationMs) };
if (values.seed !== undefined) env.RELIABILITY_SEED = values.seed;
if (values['fuzz-rate'] !== undefined) env.RELIABILITY_FUZZ_RATE = values['fuzz-rate'];

process.stderr.write(`soak: the reliability suite for at most ${values.duration} (+ ${GRACE_MS / 60_000} min to start and stop)\n`);
const child = spawn(process.execPath, [vitest, 'run', 'test/reliability.test.ts', '--outputFile.json=test-results/reliability-soak.json'], { cwd: PACKAGE_ROOT, env, stdio: 'inherit' });
const hardStop = setTimeout(() => {
  process.stderr.write(`soak: still running after ${values.duration} + ${GRACE_MS / 60_000} min: stopping vitest (pid ${child.pid})\n`);
  child.kill('SIGTERM');
}, durationMs + GRACE_MS);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => child.kill(sig));
child.once('exit', (code, signal) => {
  clearTimeout(hardStop);
  if (existsSync(summary)) process.stdout.write(`\nsoak summary (JSON in test-results/reliability-summary.json):\n\n${readFileSync(summary, 'utf8')}`);
  else process.stderr.write('soak: the suite wrote no summary\n');
  process.exit(code ?? (signal ? 1 : 0));
});
