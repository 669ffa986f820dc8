// The real `hushdns serve` in its own process (as users run it), for tests that attack it, kill it
// or load it: the test's own event loop must not share a thread with the server under test.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compileLists } from './server.js';
import { tempDir } from './temp.js';

const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'dist', 'cli.js');

export interface ChildServer {
  proc: ChildProcess;
  pid: number;
  dataDir: string;
  dns: { host: string; port: number };
  http: { host: string; port: number };
  logs: string[];
  /** Resident memory of the server process, from /proc. */
  rssMb(): number;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ChildServerOptions {
  lists: Record<string, string>;
  upstreamPort: number;
  flags?: string[];
  dataDir?: string;
  /**
   * A command the server runs under, e.g. ['unshare', '-m', 'sh', '-c', '… && exec "$@"', 'sh']: the
   * node command line is appended. It must exec node in the end, so the PID stays the server's.
   */
  wrap?: string[];
}

export async function startChildServer(opts: ChildServerOptions): Promise<ChildServer> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  const dataDir = opts.dataDir ?? tempDir();
  if (Object.keys(opts.lists).length > 0) await compileLists(dataDir, opts.lists);
  const args = [
    CLI,
    'serve',
    '--data-dir', dataDir,
    '--dns-listen', '127.0.0.1:0',
    '--http-listen', '127.0.0.1:0',
    '--upstream', `udp://127.0.0.1:${opts.upstreamPort}`,
    '--upstream-timeout', '500ms',
    '--refresh-interval', '0',
    '--log-level', 'info',
    ...(opts.flags ?? []),
  ];
  const [file, ...argv] = [...(opts.wrap ?? []), process.execPath, ...args];
  const proc = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HUSHDNS_CONFIG: '' } });
  const logs: string[] = [];
  const ready = new Promise<{ dns: string; http: string }>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 20 s:\n${logs.join('')}`)), 20_000);
    proc.stderr!.on('data', (d: Buffer) => {
      const text = d.toString();
      logs.push(text);
      for (const line of text.split('\n')) {
        if (!line.includes('hushdns is answering')) continue;
        const rec = JSON.parse(line) as { dns: string[]; http: string };
        clearTimeout(timer);
        resolveReady({ dns: rec.dns[0], http: rec.http });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before answering:\n${logs.join('')}`));
    });
  });
  proc.stdout!.resume();
  const addr = await ready;
  const split = (a: string) => ({ host: a.slice(0, a.lastIndexOf(':')), port: Number(a.slice(a.lastIndexOf(':') + 1)) });
  return {
    proc,
    pid: proc.pid!,
    dataDir,
    dns: split(addr.dns),
    http: split(addr.http),
    logs,
    rssMb: () => {
      const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    },
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode !== null) return proc.exitCode;
      const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      proc.kill(signal);
      const code = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 8000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}
