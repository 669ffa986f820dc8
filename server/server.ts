// `hushdns serve`: check the settings, make sure a table exists, then run the DNS plane
// (dns-plane.ts: the chain and the listeners) and the control plane (control-plane.ts: query log,
// HTTP API, devices) in this process, or, with --workers above 1, a primary process that runs the
// control plane and forks worker processes that each run a DNS plane (cluster/).
import cluster from 'node:cluster';
import { existsSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { changedSettings, FIELDS, reloadConfig, type FieldDef, type FieldName, type LoadedConfig } from '../common/config.js';
import { createLogger, type Level, type Logger } from '../common/log.js';
import { PACKAGE_VERSION } from '../common/paths.js';
import { BLOCKLIST_FILE } from '../common/schema.js';
import { VendorCatalog } from '../common/vendors.js';
import type { BlocklistHandle } from './blocklist.js';
import type { AnswerCache } from './cache.js';
import { startControlPlane } from './control-plane.js';
import type { Devices } from './devices.js';
import { startDnsPlane } from './dns-plane.js';
import type { HttpServer } from './http/server.js';
import { liveCacheView } from './http/deps.js';
import type { TcpListener } from './listen/tcp.js';
import type { UdpListener } from './listen/udp.js';
import { QueryLog, queryLogOptions } from './querylog/querylog.js';
import { ListRefresher } from './refresh.js';
import { checkServeConfig, type ServeSettings } from './serve-config.js';
import { Stats } from './stats.js';
import type { UpstreamPool } from './upstream/pool.js';
import type { Pause, UserRules } from './user-rules.js';

export interface StartOptions {
  log?: Logger;
  /** SIGTERM/SIGINT/SIGHUP handlers (the CLI wants them; in-process tests do not). */
  installSignals?: boolean;
  /** Trust this CA for tls:// and https:// upstreams (tests). */
  tlsCa?: string | Buffer;
  /** How often failed queries are summed up in the log (default 60 s; tests use less). */
  failureSummaryMs?: number;
}

export interface RunningServer {
  dns: { udp: UdpListener[]; tcp: TcpListener[] };
  http: HttpServer | null;
  stats: Stats;
  blocklist: BlocklistHandle;
  cache: AnswerCache;
  pool: UpstreamPool;
  querylog: QueryLog;
  userRules: UserRules;
  pause: Pause;
  devices: Devices;
  stop(): Promise<void>;
}

export const SHUTDOWN_DEADLINE_MS = 5000;

/** Worker processes for a `workers` setting: 0 (auto) is one per core, at most four. */
export function workerCount(setting: number): number {
  return setting > 0 ? setting : Math.min(4, availableParallelism());
}

/** The CLI's entry: this process alone, or a cluster primary, or one of its workers. */
export async function serve(loaded: LoadedConfig, opts: StartOptions = {}): Promise<void> {
  if (cluster.isWorker) {
    const { runWorker } = await import('./cluster/worker.js');
    await runWorker(loaded, opts);
  } else if (workerCount(loaded.config.workers) > 1) {
    const { runPrimary } = await import('./cluster/primary.js');
    await runPrimary(loaded, opts);
  } else {
    await startServer(loaded, opts);
  }
}

export interface Prepared {
  log: Logger;
  /** Installed at once when the CLI asked for signal handling. */
  signals: Signals | null;
  settings: ServeSettings;
  dataDir: string;
  catalog: VendorCatalog;
  refresher: ListRefresher;
}

/** What both a single process and a cluster primary do first: settings, data folder, a table. */
export async function prepareServe(loaded: LoadedConfig, opts: StartOptions): Promise<Prepared> {
  const config = loaded.config;
  const log = opts.log ?? createLogger(config['log-level'] as Level);
  const signals = opts.installSignals ? new Signals(log) : null;
  const settings = checkServeConfig(config);
  const dataDir = resolve(config['data-dir']);
  mkdirSync(dataDir, { recursive: true });
  const refresher = new ListRefresher(loaded, dataDir, log);
  const tablePath = join(dataDir, BLOCKLIST_FILE);
  if (!existsSync(tablePath)) {
    // First start: the bundled lists compile offline in a few seconds, so the network is protected
    // before any public list could be fetched; those follow in the background once we listen.
    log.info('no compiled table yet: compiling the bundled lists', { path: tablePath });
    await refresher.run({ offline: true });
  }
  return { log, signals, settings, dataDir, catalog: VendorCatalog.load(), refresher };
}

/** One process that answers DNS and serves the HTTP API. */
export async function startServer(loaded: LoadedConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const config = loaded.config;
  const { log, signals, settings, dataDir, catalog, refresher } = await prepareServe(loaded, opts);
  const stats = new Stats();
  // The query log needs the decision function the DNS plane builds (to describe block reasons).
  const opened: { querylog: QueryLog | null } = { querylog: null };
  const dns = await startDnsPlane(loaded, {
    log,
    settings,
    dataDir,
    catalog,
    stats,
    tlsCa: opts.tlsCa,
    failureSummaryMs: opts.failureSummaryMs,
    openRecorder: async (decide) => (opened.querylog = await QueryLog.open(queryLogOptions(config, dataDir, catalog, log, decide))),
  });
  await dns.recorderOpened;
  const querylog = opened.querylog!;
  let control;
  try {
    control = await startControlPlane(loaded, {
      log,
      dataDir,
      catalog,
      settings,
      stats,
      // Read through: a SIGHUP reload replaces the cache, the upstreams and the router.
      cache: liveCacheView(() => dns.cache),
      pool: { health: () => dns.pool.health() },
      blocklist: dns.blocklist,
      router: () => dns.routerPool,
      userRules: dns.userRules,
      pause: dns.pause,
      querylog,
      refresher,
    });
  } catch (err) {
    await dns.stopListening(Date.now());
    await dns.close();
    throw err;
  }
  announce(log, settings, dns.udp.map((l) => l.address), control.http, dns.blocklist);

  refresher.onCompiled = () => dns.blocklist.reload();
  refresher.schedule(config['refresh-interval'], dns.blocklist.current()?.info().builtAt ?? 0);

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      refresher.stop();
      await dns.stopListening(Date.now() + SHUTDOWN_DEADLINE_MS);
      await control.close();
      await dns.close();
      log.info('stopped');
    })();
    return stopping;
  };

  signals?.running(stop, reloader(loaded, log, refresher, dns.blocklist, (next) => dns.reconfigure(next)));

  return {
    dns: { udp: dns.udp, tcp: dns.tcp },
    http: control.http,
    stats,
    blocklist: dns.blocklist,
    get cache() {
      return dns.cache;
    },
    get pool() {
      return dns.pool;
    },
    querylog,
    userRules: dns.userRules,
    pause: dns.pause,
    devices: control.devices,
    stop,
  };
}

/** The one line that says the server is up, and where. */
export function announce(log: Logger, settings: ServeSettings, dns: { host: string; port: number }[], http: HttpServer | null, blocklist: BlocklistHandle, extra: Record<string, unknown> = {}): void {
  log.info('hushdns is answering', {
    version: PACKAGE_VERSION,
    dns: dns.map((a) => `${a.host}:${a.port}`),
    http: http ? `${http.address.host}:${http.address.port}` : null,
    upstreams: settings.upstreams.map((u) => u.url),
    rules: blocklist.current()?.info().rules ?? 0,
    ...extra,
  });
}

/**
 * What SIGHUP does, in a single process and in a cluster primary alike: the configuration as it
 * is now (`apply` takes it over), then the table on disk (a compile may have landed), then a fresh
 * compile of the lists (the compile reads the configuration file itself).
 */
export function reloader(loaded: LoadedConfig, log: Logger, refresher: ListRefresher, blocklist: BlocklistHandle, apply: (next: LoadedConfig) => void, tableReloaded: () => void = () => {}): () => void {
  let running = loaded;
  return () => {
    log.info('SIGHUP: reloading the configuration and the blocklist, refreshing the lists');
    const next = reloadSettings(running, log);
    if (next) {
      try {
        apply(next);
        if (next.config['refresh-interval'] !== running.config['refresh-interval']) refresher.reschedule(next.config['refresh-interval'], blocklist.current()?.info().builtAt ?? 0);
        running = next;
      } catch (err) {
        log.error('the reloaded configuration cannot be applied; the running one stays', { err });
      }
    }
    blocklist.reload();
    tableReloaded();
    void refresher.run({ offline: false });
  };
}

/**
 * The configuration read again, or null when it is invalid (the running one stays; the log says
 * which settings are wrong). Logs which changes take effect now and which need a restart.
 */
export function reloadSettings(running: LoadedConfig, log: Logger): LoadedConfig | null {
  let next: LoadedConfig;
  try {
    next = reloadConfig(running);
    checkServeConfig(next.config);
  } catch (err) {
    log.error('the reloaded configuration is invalid; the running one stays', { problems: (err as { problems?: string[] }).problems ?? [(err as Error).message] });
    return null;
  }
  const changed = changedSettings(running.config, next.config);
  const restartOnly = (name: FieldName) => (FIELDS[name] as FieldDef).restart === true;
  const later = changed.filter(restartOnly);
  const now = changed.filter((name) => !restartOnly(name));
  log.info('configuration reloaded', { changed: now });
  if (later.length > 0) log.warn('these settings change only when hushdns restarts; the running values stay', { settings: later });
  return next;
}

/**
 * Signals from the first moment of `serve`, before the first compile and the listeners: SIGTERM
 * and SIGINT stop (at once while starting, gracefully with a deadline once running); a SIGHUP
 * that comes while starting is applied as soon as the server runs.
 */
export class Signals {
  private stop: (() => Promise<void>) | null = null;
  private reload: (() => void) | null = null;
  private reloadPending = false;

  constructor(private readonly log: Logger) {
    process.once('SIGTERM', () => this.terminate('SIGTERM'));
    process.once('SIGINT', () => this.terminate('SIGINT'));
    process.on('SIGHUP', () => {
      if (this.reload) this.reload();
      else this.reloadPending = true;
    });
  }

  /** The server runs: from now on signals stop it gracefully and reload it. */
  running(stop: () => Promise<void>, reload: () => void): void {
    this.stop = stop;
    this.reload = reload;
    if (this.reloadPending) {
      this.reloadPending = false;
      reload();
    }
  }

  private terminate(signal: string): void {
    this.log.info('shutting down', { signal });
    if (!this.stop) process.exit(0);
    const force = setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS + 2000);
    force.unref();
    this.stop().then(() => process.exit(0));
  }
}
