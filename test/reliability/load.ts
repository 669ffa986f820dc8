// Runs bench/soak/load.ts (built into dist/) as a child process: the attack or the measuring
// client in a process of its own, stopped by its PID.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FloodReport, FuzzReport, LoadJob, ProbeReport } from '../../bench/soak/load.js';

const LOAD_JS = join(resolve(import.meta.dirname, '../..'), 'dist', 'bench', 'soak', 'load.js');

type ReportOf<J extends LoadJob> = J extends { mode: 'fuzz' } ? FuzzReport : J extends { mode: 'probe' } ? ProbeReport : FloodReport;

export interface RunningLoad<R> {
  readonly pid: number;
  /** The job's report once it ends by itself (fuzz, flood) or after stop(). */
  readonly done: Promise<R>;
  /** Asks the job to finish now and waits for its report. */
  stop(): Promise<R>;
}

export async function startLoad<J extends LoadJob>(job: J, maxMs = 600_000): Promise<RunningLoad<ReportOf<J>>> {
  if (!existsSync(LOAD_JS)) throw new Error(`${LOAD_JS} is missing: run \`npm run build\` first (npm test does)`);
  const child = spawn(process.execPath, [LOAD_JS, JSON.stringify(job)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => (onReady = r));
  const done = new Promise<ReportOf<J>>((resolveDone, reject) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), maxMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('{"ready":true}')) onReady();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{"mode"')) resolveDone(JSON.parse(last) as ReportOf<J>);
      else reject(new Error(`load job ${job.mode} ended with ${signal ?? code} and no report:\n${err}${out}`));
      onReady();
    });
  });
  done.catch(() => {}); // awaited by the caller; this only keeps an early failure from going unhandled
  await ready;
  if (child.exitCode !== null) await done; // died before it was ready: surface its error
  return {
    pid: child.pid!,
    done,
    stop: () => {
      if (child.exitCode === null && child.stdin!.writable) child.stdin!.end('stop\n');
      return done;
    },
  };
}
