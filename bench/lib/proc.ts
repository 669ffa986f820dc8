// Processes the benchmark starts: spawned through one registry so every one of them is stopped by
// its PID (never by name) on success, failure, Ctrl-C or an uncaught error; and the /proc readings
// the benchmark reports (CPU ticks, resident memory, high-water mark) summed over a process tree.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>;
  hasExited(): boolean;
  /** stdout then stderr as text so far (each capped), for error messages. */
  output(): string;
  stdout(): string;
}

const OUTPUT_CAP = 8 * 1024 * 1024;
const live = new Map<number, Spawned>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Last resort: synchronous SIGKILL of whatever is still registered when the harness exits.
  process.on('exit', () => {
    for (const pid of live.keys()) killTree(pid, 'SIGKILL');
  });
}

/** For the benchmark commands (not for library use inside a test runner): Ctrl-C and SIGTERM stop every started process first. */
export function stopAllOnSignals(): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}: stopping ${live.size} started process(es)\n`);
      for (const pid of live.keys()) killTree(pid, 'SIGKILL');
      process.exit(130);
    });
  }
}

/** Spawns and registers a process; its output is kept (capped) unless stdio says otherwise. */
export function startProcess(cmd: string, args: string[], opts: SpawnOptions = {}): Spawned {
  installHandlers();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (child.pid === undefined) {
    // spawn reports ENOENT asynchronously; give the caller a clear synchronous error instead.
    throw new Error(`cannot start ${cmd} ${args.join(' ')}`);
  }
  const pid = child.pid;
  let out = '';
  let text = '';
  child.stdout?.on('data', (b: Buffer) => {
    if (out.length < OUTPUT_CAP) out += b.toString('utf8');
  });
  child.stderr?.on('data', (b: Buffer) => {
    if (text.length < OUTPUT_CAP) text += b.toString('utf8');
  });
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      live.delete(pid);
      // Let the pipes drain (up to a second: a leftover grandchild may hold them open).
      const closed = new Promise((r) => child.once('close', r));
      void Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]).then(() => resolve(code ?? signal ?? 'unknown'));
    });
    child.once('error', (err) => {
      done = true;
      live.delete(pid);
      text += `\n${err.message}`;
      resolve('error');
    });
  });
  const s: Spawned = { child, pid, exited, hasExited: () => done, output: () => `${out}${text}`, stdout: () => out };
  live.set(pid, s);
  return s;
}

/** SIGTERM the process and its descendants, SIGKILL what is left after `graceMs`. */
export async function stopProcess(s: Spawned, graceMs = 3000): Promise<void> {
  if (s.hasExited()) return;
  const tree = [s.pid, ...descendants(s.pid)];
  for (const pid of tree) signal(pid, 'SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
  if ((await Promise.race([s.exited, timer])) === 'timeout') {
    for (const pid of [s.pid, ...descendants(s.pid), ...tree]) signal(pid, 'SIGKILL');
    await Promise.race([s.exited, new Promise((r) => setTimeout(r, 2000).unref())]);
  }
  // Workers may outlive a parent that was killed; they were ours, so stop them too.
  for (const pid of tree) if (isAlive(pid)) signal(pid, 'SIGKILL');
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live.values()].map((s) => stopProcess(s)));
}

function killTree(pid: number, sig: NodeJS.Signals): void {
  for (const p of [...descendants(pid), pid]) signal(p, sig);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

export function isAlive(pid: number): boolean {
  const stat = readProc(pid, 'stat');
  // A zombie has exited; only its parent's wait is missing.
  return stat !== null && statFields(stat)[0] !== 'Z';
}

function readProc(pid: number, file: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return null;
  }
}

/** Fields after `(comm)`: index 0 is the state (field 3 of proc(5)). */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Every live descendant of `pid` (children, grandchildren, …), from /proc's ppid fields. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    const c = e.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const stat = readProc(Number(e), 'stat');
    if (!stat) continue;
    const ppid = Number(statFields(stat)[1]);
    let list = children.get(ppid);
    if (!list) children.set(ppid, (list = []));
    list.push(Number(e));
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && out.length < 10_000) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

export function tree(pid: number): number[] {
  return [pid, ...descendants(pid)];
}

let clkTck = 0;
export function clockTicksPerSecond(): number {
  if (clkTck === 0) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clkTck = Number(r.stdout?.trim()) || 100;
  }
  return clkTck;
}

/** utime + stime of the processes, in clock ticks (proc(5) fields 14 and 15). */
export function cpuTicks(pids: number[]): number {
  let sum = 0;
  for (const pid of pids) {
    const stat = readProc(pid, 'stat');
    if (!stat) continue;
    const f = statFields(stat);
    sum += Number(f[11]) + Number(f[12]);
  }
  return sum;
}

function statusKiB(pid: number, key: string): number {
  const status = readProc(pid, 'status');
  if (!status) return 0;
  const at = status.indexOf(`${key}:`);
  if (at < 0) return 0;
  return Number.parseInt(status.slice(at + key.length + 1).trim(), 10) || 0;
}

/** Resident set size in KiB, summed over the processes. */
export function rssKiB(pids: number[]): number {
  return pids.reduce((s, pid) => s + statusKiB(pid, 'VmRSS'), 0);
}

/** Peak resident set size (VmHWM) in KiB, summed over the processes. */
export function hwmKiB(pids: number[]): number {
  return pids.reduce((s, pid) => s + statusKiB(pid, 'VmHWM'), 0);
}

export function haveCommand(cmd: string): boolean {
  if (cmd.includes('/')) return existsSync(cmd);
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export interface Completed {
  code: number | string;
  wallMs: number;
  /** Peak RSS of the process (and its descendants while they lived) in KiB. */
  peakKiB: number;
  peakSource: 'gnu-time' | 'vmhwm-poll';
  output: string;
  stdout: string;
  timedOut: boolean;
}

/**
 * Runs a command to completion within `timeoutMs` and measures its wall time and peak RSS: with
 * GNU time's %M when /usr/bin/time exists (exact), else by polling VmHWM of the tree every 20 ms.
 */
export async function runMeasured(cmd: string, args: string[], opts: { timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv; timeFile?: string }): Promise<Completed> {
  const gnuTime = opts.timeFile && haveCommand('/usr/bin/time');
  const t0 = performance.now();
  const s = gnuTime
    ? startProcess('/usr/bin/time', ['-f', '%e %M', '-o', opts.timeFile!, cmd, ...args], { cwd: opts.cwd, env: opts.env })
    : startProcess(cmd, args, { cwd: opts.cwd, env: opts.env });
  let polledPeak = 0;
  const poll = setInterval(() => {
    polledPeak = Math.max(polledPeak, hwmKiB(gnuTime ? descendants(s.pid) : tree(s.pid)));
  }, 20);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void stopProcess(s, 2000);
  }, opts.timeoutMs);
  const code = await s.exited;
  const wallMs = performance.now() - t0;
  clearInterval(poll);
  clearTimeout(timer);
  let peakKiB = polledPeak;
  let peakSource: Completed['peakSource'] = 'vmhwm-poll';
  if (gnuTime && !timedOut) {
    try {
      const fields = readFileSync(opts.timeFile!, 'utf8').trim().split('\n').pop()!.split(' ');
      const m = Number(fields[1]);
      if (Number.isFinite(m) && m > 0) {
        peakKiB = Math.max(m, polledPeak);
        peakSource = 'gnu-time';
      }
    } catch {
      // Keep the polled value.
    }
  }
  return { code, wallMs, peakKiB, peakSource, output: s.output(), stdout: s.stdout(), timedOut };
}

/** Busy ticks (everything but idle and iowait) of one CPU from /proc/stat, null when unreadable. */
export function cpuBusyTicks(cpu: number): number | null {
  let stat: string;
  try {
    stat = readFileSync('/proc/stat', 'utf8');
  } catch {
    return null;
  }
  const at = stat.indexOf(`\ncpu${cpu} `);
  if (at < 0) return null;
  const f = stat.slice(at + 1, stat.indexOf('\n', at + 1)).split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  return f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
}
