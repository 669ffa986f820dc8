// The primary process of a cluster (--workers above 1). Node 20's dgram has no SO_REUSEPORT, so
// the workers share the listening sockets through node:cluster: the primary binds them and hands
// them over, the kernel spreads UDP datagrams over the workers, and TCP connections are dealt out
// in turn. The primary answers no DNS itself: it runs the control plane (query log, HTTP API,
// devices, list refresh) for all workers, from their batches and counters, and tells them what
// changes. A worker that dies is replaced; one that cannot start stops the whole server.
import cluster, { type Worker } from 'node:cluster';
import { join } from 'node:path';
import type { LoadedConfig } from '../../common/config.js';
import { UserError } from '../../common/errors.js';
import { BLOCKLIST_FILE } from '../../common/schema.js';
import { BlocklistHandle } from '../blocklist.js';
import { startControlPlane } from '../control-plane.js';
import { poolOptions } from '../dns-plane.js';
import { QueryLog, queryLogOptions } from '../querylog/querylog.js';
import { BatchStrings } from '../querylog/recorder.js';
import { announce, prepareServe, reloader, SHUTDOWN_DEADLINE_MS, workerCount, type StartOptions } from '../server.js';
import { Stats, type StatsSnapshot } from '../stats.js';
import { UpstreamPool, type UpstreamHealth } from '../upstream/pool.js';
import { Pause, userFirst, UserRules } from '../user-rules.js';
import type { CacheCounters, ToPrimary, ToWorker } from './messages.js';
import { applyHeapMode, type HeapMode } from '../heap-mode.js';

/** More restarts than this within RESTART_WINDOW_MS: something is wrong that a restart will not fix. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
const RESTART_DELAY_MS = 1000;

export class WorkerStartError extends UserError {}

interface Member {
  worker: Worker;
  ready: boolean;
  strings: BatchStrings;
  snapshot: { stats: StatsSnapshot; cache: CacheCounters; upstreams: UpstreamHealth[] } | null;
}

export async function runPrimary(loaded: LoadedConfig, opts: StartOptions): Promise<void> {
  const config = loaded.config;
  const { log, signals, settings, dataDir, catalog, refresher } = await prepareServe(loaded, opts);
  const count = workerCount(config.workers);

  const stats = new Stats();
  const blocklist = new BlocklistHandle(join(dataDir, BLOCKLIST_FILE), {
    watch: true,
    onSwap: (info) => {
      log.info('blocklist swapped in', { rules: info.rules, builtAt: new Date(info.builtAt).toISOString() });
      stats.onBlocklistSwap();
    },
    onError: (err) => log.error('new blocklist refused; the previous one keeps serving', { err, path: err.path }),
  });
  const userRules = UserRules.load(dataDir, catalog);
  const pause = new Pause();
  const routerPool = settings.router ? new UpstreamPool([settings.router], poolOptions(config, 1), { tlsCa: opts.tlsCa }) : null;
  const decide = userFirst(userRules, (name) => blocklist.current()?.decide(name) ?? null);
  const querylog = await QueryLog.open(queryLogOptions(config, dataDir, catalog, log, decide));

  const members = new Map<number, Member>();
  let retired: StatsSnapshot[] = [];
  const retiredCache = { hits: 0, misses: 0, evictions: 0 };
  const retiredUpstreams = new Map<string, UpstreamHealth['counters']>();
  let stopping = false;
  const restarts: number[] = [];

  const broadcast = (m: ToWorker) => {
    for (const { worker } of members.values()) if (worker.isConnected()) worker.send(m);
  };
  const refreshStats = () => {
    if (retired.length > 8) {
      const folded = new Stats();
      folded.loadSum(retired);
      retired = [folded.snapshot()];
    }
    const live = [...members.values()].flatMap((m) => (m.snapshot ? [m.snapshot.stats] : []));
    stats.loadSum([...retired, ...live]);
  };
  const retire = (m: Member) => {
    if (!m.snapshot) return;
    retired.push(m.snapshot.stats);
    retiredCache.hits += m.snapshot.cache.hits;
    retiredCache.misses += m.snapshot.cache.misses;
    retiredCache.evictions += m.snapshot.cache.evictions;
    for (const u of m.snapshot.upstreams) retiredUpstreams.set(u.name, addCounters(retiredUpstreams.get(u.name), u.counters));
  };

  cluster.setupPrimary({ serialization: 'advanced' });

  let startupFailed: ((err: Error) => void) | null = null;
  const fork = (): Worker => {
    const worker = cluster.fork();
    const member: Member = { worker, ready: false, strings: new BatchStrings(), snapshot: null };
    members.set(worker.id, member);
    worker.on('message', (m: ToPrimary) => {
      switch (m.t) {
        case 'log':
          querylog.ingest(m.batch, member.strings, { dropped: m.dropped, excluded: m.excluded });
          break;
        case 'snapshot':
          member.snapshot = { stats: m.stats, cache: m.cache, upstreams: m.upstreams };
          refreshStats();
          break;
        case 'ready':
          member.ready = true;
          worker.emit('hushdns:ready', m.dns);
          break;
        case 'fatal':
          log.error('a DNS worker could not start', { worker: worker.id, message: m.message });
          startupFailed?.(m.user ? new WorkerStartError(m.message) : new Error(m.message));
          break;
      }
    });
    worker.on('exit', (code, signal) => {
      members.delete(worker.id);
      retire(member);
      refreshStats();
      if (stopping) return;
      if (startupFailed) {
        startupFailed(new Error(`a DNS worker exited with code ${code} ${member.ready ? 'while the others were starting' : 'before it listened'}`));
        return;
      }
      // After start-up a worker that stops, before listening (a replacement) or after, is restarted and counted.
      log.error(member.ready ? 'a DNS worker stopped; starting a new one' : 'a new DNS worker stopped before it listened; starting another', { worker: worker.id, code, signal });
      const now = Date.now();
      restarts.push(now);
      while (restarts.length > 0 && restarts[0] < now - RESTART_WINDOW_MS) restarts.shift();
      if (restarts.length > MAX_RESTARTS) {
        log.error(`DNS workers stopped ${restarts.length} times within a minute; giving up so the service manager restarts hushdns`);
        void stop().then(() => process.exit(1));
        return;
      }
      setTimeout(() => {
        if (!stopping) fork();
      }, RESTART_DELAY_MS).unref();
    });
    return worker;
  };

  /** Start-up failed: stop the workers started so far and close what is open. */
  const abandon = async (): Promise<void> => {
    stopping = true;
    for (const { worker } of members.values()) worker.kill();
    await querylog.close();
    await routerPool?.close();
    blocklist.close();
  };

  // Start every worker and wait until each listens; the first that cannot start stops them all.
  let addresses: { host: string; port: number }[] = [];
  try {
    await new Promise<void>((resolveAll, reject) => {
      startupFailed = reject;
      let ready = 0;
      for (let i = 0; i < count; i++) {
        const worker = fork();
        worker.once('hushdns:ready', (dns: { host: string; port: number }[]) => {
          addresses = dns;
          if (++ready === count) resolveAll();
        });
      }
    });
  } catch (err) {
    await abandon();
    throw err;
  } finally {
    startupFailed = null;
  }

  userRules.onChange = () => broadcast({ t: 'user-rules' });
  pause.onChange = (state) => broadcast({ t: 'pause', state });

  const live = () => [...members.values()].flatMap((m) => (m.snapshot ? [m.snapshot] : []));
  const control = await startControlPlane(loaded, {
    log,
    dataDir,
    catalog,
    settings,
    stats,
    cache: {
      get size() {
        return live().reduce((n, s) => n + s.cache.size, 0);
      },
      get byteSize() {
        return live().reduce((n, s) => n + s.cache.byteSize, 0);
      },
      get hits() {
        return live().reduce((n, s) => n + s.cache.hits, retiredCache.hits);
      },
      get misses() {
        return live().reduce((n, s) => n + s.cache.misses, retiredCache.misses);
      },
      get evictions() {
        return live().reduce((n, s) => n + s.cache.evictions, retiredCache.evictions);
      },
    },
    pool: { health: () => combineHealth(live().map((s) => s.upstreams), retiredUpstreams) },
    blocklist,
    router: () => routerPool,
    userRules,
    pause,
    querylog,
    refresher,
    workers: () => {
      const all = [...members.values()];
      return {
        configured: count,
        running: all.filter((m) => m.ready).length,
        processes: all.map((m) => ({ id: m.worker.id, pid: m.worker.process.pid, queries: m.snapshot?.stats.total ?? 0 })),
      };
    },
  }).catch(async (err: unknown) => {
    // HTTP could not start (its port taken…): the workers, the log and the table go too.
    await abandon();
    throw err;
  });
  announce(log, settings, addresses, control.http, blocklist, { workers: count });
  // The primary holds the query log and the API; its heap floods with new names like a worker's.
  applyHeapMode(config.memory as HeapMode);

  refresher.onCompiled = () => {
    blocklist.reload();
    broadcast({ t: 'reload-table' });
  };
  refresher.schedule(config['refresh-interval'], blocklist.current()?.info().builtAt ?? 0);

  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      refresher.stop();
      const deadline = Date.now() + SHUTDOWN_DEADLINE_MS;
      const exits = [...members.values()].map(({ worker }) => new Promise<void>((done) => (worker.isDead() ? done() : worker.once('exit', () => done()))));
      broadcast({ t: 'stop', deadline });
      const late = setTimeout(() => {
        for (const { worker } of members.values()) worker.kill('SIGKILL');
      }, SHUTDOWN_DEADLINE_MS + 1000);
      await Promise.all(exits);
      clearTimeout(late);
      await control.close();
      await querylog.close();
      await routerPool?.close();
      blocklist.close();
      log.info('stopped');
    })();
    return stopped;
  };

  signals?.running(
    stop,
    reloader(loaded, log, refresher, blocklist, () => broadcast({ t: 'reload-config' }), () => broadcast({ t: 'reload-table' })),
  );
}

function addCounters(a: UpstreamHealth['counters'] | undefined, b: UpstreamHealth['counters']): UpstreamHealth['counters'] {
  if (!a) return { ...b };
  const out = { ...a };
  for (const k of Object.keys(b) as (keyof typeof b)[]) out[k] += b[k];
  return out;
}

/** Each upstream as the workers see it together: counters summed, up only while every worker finds it up. */
function combineHealth(perWorker: UpstreamHealth[][], retired: Map<string, UpstreamHealth['counters']>): UpstreamHealth[] {
  const byName = new Map<string, UpstreamHealth>();
  for (const list of perWorker) {
    for (const h of list) {
      const seen = byName.get(h.name);
      if (!seen) byName.set(h.name, { ...h, counters: addCounters(retired.get(h.name), h.counters) });
      else {
        seen.up &&= h.up;
        seen.consecutiveFailures = Math.max(seen.consecutiveFailures, h.consecutiveFailures);
        seen.counters = addCounters(seen.counters, h.counters);
      }
    }
  }
  return [...byName.values()];
}
