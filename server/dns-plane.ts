// The DNS side of `hushdns serve`: the compiled table, the answer cache, the upstreams, the
// resolver chain and the listeners. A single process runs one; in cluster mode every worker
// process runs its own, sharing the listening sockets. The chain order is written once, here,
// with the reason for each position.
import { join } from 'node:path';
import { FIELDS, parseHostPort, type Config, type FieldDef, type FieldName, type LoadedConfig } from '../common/config.js';
import type { Logger } from '../common/log.js';
import { BLOCKLIST_FILE } from '../common/schema.js';
import type { VendorCatalog } from '../common/vendors.js';
import { ClientAcl } from './acl.js';
import { BlocklistHandle } from './blocklist.js';
import { AnswerCache } from './cache.js';
import { createPacketHandler, type PacketHandler } from './handle.js';
import { listenTcp, type TcpListener } from './listen/tcp.js';
import { listenUdp, type UdpListener } from './listen/udp.js';
import { FailureLog } from './pipeline/failure-log.js';
import { chain, type Answer, type Query } from './pipeline/types.js';
import { RateLimiter } from './rate-limit.js';
import { checkServeConfig, type ServeSettings } from './serve-config.js';
import { Sinkhole, type BlockMode } from './sinkhole.js';
import { accessStage, ClientGate, RATE_LIMITED_REASON } from './stages/access.js';
import { blockStage, type Decider } from './stages/block.js';
import { cacheStage } from './stages/cache.js';
import { forwardStage } from './stages/forward.js';
import { hygieneStage } from './stages/hygiene.js';
import { localStage } from './stages/local.js';
import { specialStage } from './stages/special.js';
import type { Stats } from './stats.js';
import { UpstreamPool, type PoolOptions } from './upstream/pool.js';
import { Pause, pauseGate, userFirst, UserRules } from './user-rules.js';
import { applyHeapMode, type HeapMode } from './heap-mode.js';
import { OpeningRecorder } from './opening-recorder.js';

/** Where answered queries go: the query log itself, or a worker's link to the primary's. */
export interface QueryRecorder {
  record(query: Query, answer: Answer, ms: number): void;
  close(): Promise<void>;
}

export interface DnsPlaneOptions {
  log: Logger;
  settings: ServeSettings;
  dataDir: string;
  catalog: VendorCatalog;
  stats: Stats;
  /** Opens the recorder once the decision function exists (it describes new block reasons). */
  openRecorder(decide: Decider): Promise<QueryRecorder>;
  /** Level of the "blocklist swapped in" line (workers of a cluster log it at debug, the primary at info). */
  swapLogLevel?: 'info' | 'debug';
  /** Trust this CA for tls:// and https:// upstreams (tests). */
  tlsCa?: string | Buffer;
  /** How often failed queries are summed up in the log (default 60 s; tests use less). */
  failureSummaryMs?: number;
}

export interface DnsPlane {
  udp: UdpListener[];
  tcp: TcpListener[];
  blocklist: BlocklistHandle;
  /** The answer cache, upstreams and router now (a reload may replace them). */
  readonly cache: AnswerCache;
  readonly pool: UpstreamPool;
  readonly routerPool: UpstreamPool | null;
  userRules: UserRules;
  pause: Pause;
  recorder: QueryRecorder;
  /** The user's entries, then the compiled table. */
  decide: Decider;
  /** Settles once the recorder is open; queries answered before are held and handed to it then. */
  recorderOpened: Promise<void>;
  /** Takes no new query, answers those in flight until `deadline` (epoch ms), closes the sockets. */
  stopListening(deadline: number): Promise<void>;
  /** Closes the recorder, upstreams and table (after stopListening). */
  close(): Promise<void>;
  /**
   * Applies a reloaded configuration (SIGHUP): the chain is rebuilt with the new settings and
   * takes the next query; queries in flight finish on the old one. Settings marked `restart` keep
   * their old value. Throws ConfigError (the old chain keeps serving).
   */
  reconfigure(loaded: LoadedConfig): void;
}

/** Pool settings from the config: every upstream may take its full timeout once, three at most. */
export function poolOptions(config: LoadedConfig['config'], upstreams: number): PoolOptions & { budgetMs: number } {
  const budgetMs = config['upstream-timeout'] * Math.min(3, Math.max(1, upstreams));
  return { strategy: config['upstream-strategy'] as 'failover' | 'race', timeoutMs: config['upstream-timeout'], budgetMs };
}

export async function startDnsPlane(loaded: LoadedConfig, opts: DnsPlaneOptions): Promise<DnsPlane> {
  const { config } = loaded;
  const { log, stats, settings } = opts;
  const tablePath = join(opts.dataDir, BLOCKLIST_FILE);
  const blocklist = new BlocklistHandle(tablePath, {
    watch: true,
    onSwap: (info) => {
      log[opts.swapLogLevel ?? 'info']('blocklist swapped in', { rules: info.rules, builtAt: new Date(info.builtAt).toISOString() });
      stats.onBlocklistSwap();
    },
    onError: (err) => log.error('new blocklist refused; the previous one keeps serving', { err, path: err.path }),
  });
  if (!blocklist.current()) log.warn('no usable blocklist: answering without blocking until one compiles', { path: tablePath });

  // The user's own allow/deny entries (API, dashboard) decide before the compiled table; a pause
  // lets a client's queries (or everyone's) pass the block stage for a while.
  const userRules = UserRules.load(opts.dataDir, opts.catalog);
  const pause = new Pause();
  const decide = userFirst(userRules, (name) => blocklist.current()?.decide(name) ?? null);
  // DNS listens while the recorder opens (the query log's thread and file): start-up does not wait for it.
  const recorder = new OpeningRecorder(opts.openRecorder(decide), log);
  const failures = new FailureLog(log, opts.failureSummaryMs);
  const shared: Shared = { log, stats, blocklist, pause, decide, recorder, failures, tlsCa: opts.tlsCa };

  let current: Resolver;
  try {
    current = buildResolver(config, settings, shared, null);
  } catch (err) {
    // Nothing listens yet; what is already open (the query log's thread and file, the table) closes.
    await recorder.close();
    blocklist.close();
    throw err;
  }
  // The listeners call through this: a reload swaps the resolver under them.
  const handle: PacketHandler = (msg, client, protocol) => current.handle(msg, client, protocol);
  const onListenerError = (err: Error) => log.error('listener error', { err });

  const udp: UdpListener[] = [];
  const tcp: TcpListener[] = [];
  const closeSockets = async () => {
    await Promise.all([...udp.map((l) => l.close()), ...tcp.map((l) => l.close())]);
  };
  const closeRest = async () => {
    failures.flush();
    await recorder.close();
    await current.close();
    blocklist.close();
  };
  try {
    for (const spec of config['dns-listen'] as string[]) {
      const { host, port } = parseHostPort(spec)!;
      try {
        const pair = await listenPair(host, port, handle, onListenerError);
        udp.push(pair.udp);
        tcp.push(pair.tcp);
      } catch (err) {
        // The default listens on IPv6 too; a host without IPv6 should still start on IPv4.
        const code = (err as NodeJS.ErrnoException).code;
        if (loaded.origins['dns-listen'] === 'default' && host === '::' && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL')) {
          log.warn('IPv6 is not available; answering on IPv4 only', { address: spec });
          continue;
        }
        throw err;
      }
    }
  } catch (err) {
    await closeSockets();
    await closeRest();
    throw err;
  }
  applyHeapMode(config.memory as HeapMode);

  return {
    udp,
    tcp,
    blocklist,
    get cache() {
      return current.cache;
    },
    get pool() {
      return current.pool;
    },
    get routerPool() {
      return current.routerPool;
    },
    userRules,
    pause,
    recorder,
    decide,
    recorderOpened: recorder.opened,
    stopListening: async (deadline) => {
      // Stop taking queries, let the ones in flight be answered (TCP connections end once theirs
      // are written), then close the sockets.
      for (const l of udp) l.drain();
      const udpDrained = async () => {
        while (Date.now() < deadline && udp.some((l) => l.inFlight() > 0)) await new Promise((r) => setTimeout(r, 20));
      };
      await Promise.all([udpDrained(), ...tcp.map((l) => l.close(Math.max(0, deadline - Date.now())))]);
      await closeSockets();
    },
    close: closeRest,
    reconfigure: (next) => {
      const merged = keepRestartSettings(config, next.config);
      const replaced = current;
      current = buildResolver(merged, checkServeConfig(merged), shared, replaced);
      // Queries in flight on the old chain may still need its upstreams for a while.
      setTimeout(() => void replaced.close(), poolOptions(merged, 3).budgetMs + 2000).unref();
    },
  };
}

interface Shared {
  log: Logger;
  stats: Stats;
  blocklist: BlocklistHandle;
  pause: Pause;
  decide: Decider;
  recorder: QueryRecorder;
  failures: FailureLog;
  tlsCa?: string | Buffer;
}

/** The parts of the DNS plane that follow the settings: rebuilt whole on a reload. */
interface Resolver {
  config: Config;
  handle: PacketHandler;
  cache: AnswerCache;
  pool: UpstreamPool;
  routerPool: UpstreamPool | null;
  /** Closes its upstreams (the answer cache is only memory, and a successor may share it). */
  close(): Promise<void>;
}

/** The settings a running server cannot take over (listeners, data folder, query log…) keep their old value. */
function keepRestartSettings(running: Config, next: Config): Config {
  const merged: Record<string, unknown> = { ...next };
  for (const [name, def] of Object.entries(FIELDS) as [FieldName, FieldDef][]) if (def.restart) merged[name] = running[name];
  return merged as unknown as Config;
}

function sameCacheSettings(a: Config, b: Config): boolean {
  return (['cache-size', 'cache-max-bytes', 'cache-min-ttl', 'cache-max-ttl', 'serve-stale', 'serve-stale-max-age'] as const).every((k) => a[k] === b[k]);
}

/**
 * The chain for one set of settings. `previous` lends its answer cache when the cache settings are
 * the same (a reload keeps what was learnt) and is how the old upstreams are told apart from new ones.
 */
function buildResolver(config: Config, settings: ServeSettings, shared: Shared, previous: Resolver | null): Resolver {
  const { log, stats, pause, decide, recorder, failures } = shared;
  const cache =
    previous && sameCacheSettings(previous.config, config)
      ? previous.cache
      : new AnswerCache({
          maxEntries: config['cache-size'],
          maxBytes: config['cache-max-bytes'],
          minTtl: Math.floor(config['cache-min-ttl'] / 1000),
          maxTtl: Math.floor(config['cache-max-ttl'] / 1000),
          staleMaxAgeMs: config['serve-stale'] ? config['serve-stale-max-age'] : 0,
        });
  const pooling = poolOptions(config, settings.upstreams.length);
  const pool = new UpstreamPool(settings.upstreams, pooling, { tlsCa: shared.tlsCa });
  const routerPool = settings.router ? new UpstreamPool([settings.router], pooling, { tlsCa: shared.tlsCa }) : null;
  const sinkhole = new Sinkhole({ mode: config['block-mode'] as BlockMode, ttlSeconds: Math.floor(config['block-ttl'] / 1000), customIps: config['block-ip'] as string[] });

  // One gate for the chain's first stage and for the packets that never reach the chain.
  const gate = new ClientGate({
    acl: new ClientAcl(config['allow-clients'] as string[]),
    limiter: config['rate-limit'] > 0 ? new RateLimiter(config['rate-limit'], config['rate-limit-window']) : null,
    limitLoopback: config['rate-limit-loopback'],
    onRateLimited: (protocol) => stats.rejected(protocol, RATE_LIMITED_REASON),
  });
  const resolveQuery = chain(
    [
      // Refuse outsiders and floods before any work is spent on them.
      accessStage(gate),
      // ANY, zone transfers and other classes never reach the resolver proper.
      hygieneStage(),
      // The user's own records beat every list and the built-in LAN rules below (a record for
      // nas.lan or for the PTR of a private address is answered, not sent to the router).
      localStage(settings.localRecords),
      // Signals (DoH canary, Private Relay, DDR) and LAN names: answered here, never by a list.
      specialStage({ blockPrivateRelay: config['block-private-relay'], localDomain: config['local-domain'], router: routerPool ? forwardStage(routerPool) : null }),
      // Before the cache: a newly blocked name is never served from cache.
      pauseGate(pause, blockStage(decide, sinkhole)),
      cacheStage(cache, { serveStale: config['serve-stale'], prefetch: config.prefetch, onPrefetchError: (err, name) => log.debug('prefetch failed', { name, err }) }),
    ],
    forwardStage(pool),
  );

  const handle = createPacketHandler({
    handler: resolveQuery,
    observer: {
      answered: (query, answer, ms) => {
        stats.answered(query, answer, ms);
        recorder.record(query, answer, ms);
      },
      rejected: (protocol, reason) => stats.rejected(protocol, reason),
      failed: (query, err) => failures.failed(query, err),
    },
    deadlineMs: pooling.budgetMs + 1000,
    gate,
  });
  return {
    config,
    handle,
    cache,
    pool,
    routerPool,
    close: async () => {
      await pool.close();
      await routerPool?.close();
    },
  };
}

/**
 * UDP and TCP on the same address and port. With port 0 (tests) TCP takes the port UDP was given;
 * if another program holds that TCP port, try again with a new one.
 */
async function listenPair(host: string, port: number, handle: PacketHandler, onError: (err: Error) => void): Promise<{ udp: UdpListener; tcp: TcpListener }> {
  for (let attempt = 0; ; attempt++) {
    const udp = await listenUdp(host, port, handle, onError);
    try {
      return { udp, tcp: await listenTcp(host, udp.address.port, handle, onError) };
    } catch (err) {
      await udp.close();
      if (port !== 0 || attempt >= 5 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
}
