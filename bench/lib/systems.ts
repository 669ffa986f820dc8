// The DNS servers the benchmark compares, each loaded with exactly the same compiled set:
// hushdns itself (one or more workers), dnsmasq with `address=/d/#` lines or a hosts file, and
// unbound with local-zones — the latter three fed by `hushdns export`. Each is started pinned to
// the server CPUs, on loopback, forwarding to the benchmark's stub upstream, and timed from spawn
// to its first correct (blocked) answer.
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../common/paths.js';
import { isBlockedAnswer, type Prober } from './dns-probe.js';
import { startProcess, stopProcess, tree, type Spawned } from './proc.js';

export type SystemId = 'hushdns' | 'hushdns-nolog' | 'hushdns-speed' | 'hushdns-w2' | 'dnsmasq' | 'dnsmasq-hosts' | 'unbound';

export interface PreparedTable {
  /** hushdns --data-dir holding blocklist.sqlite. */
  dataDir: string;
  dnsmasqConf: string;
  hostsFile: string;
  unboundConf: string;
  /** A name every system must answer as blocked once its whole list is loaded. */
  readinessName: string;
}

export interface SystemDef {
  id: SystemId;
  label: string;
  /** Commands that must exist. */
  needs: string[];
  /** Blocks whole subtrees (dnsmasq's hosts file and plain hosts lists block single names). */
  subtree: boolean;
  /** Worker processes asked for (hushdns only). */
  workers?: number;
  /** More `hushdns serve` flags (hushdns only). */
  serveArgs?: string[];
}

export const SYSTEMS: Record<SystemId, SystemDef> = {
  hushdns: { id: 'hushdns', label: 'hushdns (1 worker)', needs: ['taskset'], subtree: true, workers: 1 },
  // The peers log nothing per query by default; this row shows what the query log costs.
  'hushdns-nolog': { id: 'hushdns-nolog', label: 'hushdns (1 worker, query log off)', needs: ['taskset'], subtree: true, workers: 1, serveArgs: ['--querylog', 'off'] },
  // What `memory: small` (the default: V8 collects sooner) costs and saves against V8's defaults.
  'hushdns-speed': { id: 'hushdns-speed', label: 'hushdns (1 worker, --memory speed)', needs: ['taskset'], subtree: true, workers: 1, serveArgs: ['--memory', 'speed'] },
  'hushdns-w2': { id: 'hushdns-w2', label: 'hushdns (2 workers)', needs: ['taskset'], subtree: true, workers: 2 },
  dnsmasq: { id: 'dnsmasq', label: 'dnsmasq (address=/d/#)', needs: ['taskset', 'dnsmasq'], subtree: true },
  'dnsmasq-hosts': { id: 'dnsmasq-hosts', label: 'dnsmasq (hosts file)', needs: ['taskset', 'dnsmasq'], subtree: false },
  unbound: { id: 'unbound', label: 'unbound (local-zone always_nxdomain)', needs: ['taskset', 'unbound'], subtree: true },
};

export interface StartContext {
  table: PreparedTable;
  stubPort: number;
  /** taskset CPU list for the server. */
  cpus: string;
  workDir: string;
  prober: Prober;
  readyTimeoutMs: number;
  /** Extra node flags for hushdns (e.g. --cpu-prof). */
  nodeFlags?: string[];
}

export interface RunningSystem {
  def: SystemDef;
  proc: Spawned;
  port: number;
  /** performance.now() just before the spawn. */
  startedAt: number;
  readyMs: number;
  /** The server's processes now (the main one and any workers). */
  pids(): number[];
  stop(): Promise<void>;
}

export class SystemStartError extends Error {}

async function portFree(port: number): Promise<boolean> {
  const udp = await new Promise<boolean>((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
  if (!udp) return false;
  return new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A random high port free for both UDP and TCP on 127.0.0.1. */
export async function pickPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    if (await portFree(port)) return port;
  }
  throw new SystemStartError('no free port found in 50 tries');
}

function hushdnsArgs(def: SystemDef, ctx: StartContext, port: number): string[] {
  return [
    ...(ctx.nodeFlags ?? []),
    join(PACKAGE_ROOT, 'dist', 'cli.js'),
    'serve',
    '--data-dir', ctx.table.dataDir,
    '--dns-listen', `127.0.0.1:${port}`,
    '--http-listen', '127.0.0.1:0',
    '--upstream', `udp://127.0.0.1:${ctx.stubPort}`,
    '--refresh-interval', '0',
    '--rate-limit', '0',
    '--workers', String(def.workers ?? 1),
    '--log-level', 'warn',
    ...(def.serveArgs ?? []),
  ];
}

function dnsmasqConfig(def: SystemDef, ctx: StartContext, port: number): string {
  const lines = [
    `port=${port}`,
    'listen-address=127.0.0.1',
    'bind-interfaces',
    'no-resolv',
    'no-hosts',
    'no-poll',
    `server=127.0.0.1#${ctx.stubPort}`,
    // dnsmasq's default cache (150 names) would not hold the cached workload; 10 000 does.
    'cache-size=10000',
    'dns-forward-max=1000',
    'user=root',
    'pid-file=',
    def.id === 'dnsmasq' ? `conf-file=${ctx.table.dnsmasqConf}` : `addn-hosts=${ctx.table.hostsFile}`,
  ];
  const path = join(ctx.workDir, `${def.id}-${port}.conf`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function unboundConfig(ctx: StartContext, port: number): string {
  const text = `server:
  interface: 127.0.0.1
  port: ${port}
  do-ip6: no
  num-threads: 1
  so-reuseport: no
  username: ""
  chroot: ""
  directory: "${ctx.workDir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  do-daemonize: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  do-not-query-localhost: no
  prefetch: no
  qname-minimisation: no
include: "${ctx.table.unboundConf}"
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@${ctx.stubPort}
`;
  const path = join(ctx.workDir, `unbound-${port}.conf`);
  writeFileSync(path, text);
  return path;
}

/** Starts the system pinned to `ctx.cpus` and waits for its first correct answer. */
export async function startSystem(def: SystemDef, ctx: StartContext): Promise<RunningSystem> {
  const port = await pickPort();
  let cmd: string[];
  if (def.id.startsWith('hushdns')) cmd = [process.execPath, ...hushdnsArgs(def, ctx, port)];
  else if (def.id === 'dnsmasq' || def.id === 'dnsmasq-hosts') cmd = ['dnsmasq', '-k', '-C', dnsmasqConfig(def, ctx, port)];
  else cmd = ['unbound', '-d', '-c', unboundConfig(ctx, port)];

  const t0 = performance.now();
  // taskset execs the server, so the PID is the server's own.
  const proc = startProcess('taskset', ['-c', ctx.cpus, ...cmd], { cwd: ctx.workDir });
  const readyMs = await ctx.prober.waitFor(port, ctx.table.readinessName, isBlockedAnswer, { since: t0, timeoutMs: ctx.readyTimeoutMs, gaveUp: () => proc.hasExited() });
  if (readyMs === null) {
    const why = proc.hasExited() ? `exited: ${proc.output().slice(-800).trim()}` : `no blocked answer for ${ctx.table.readinessName} within ${ctx.readyTimeoutMs / 1000} s`;
    await stopProcess(proc);
    throw new SystemStartError(`${def.label}: ${why}`);
  }
  return {
    def,
    proc,
    port,
    startedAt: t0,
    readyMs,
    pids: () => tree(proc.pid),
    stop: () => stopProcess(proc, 8000),
  };
}
