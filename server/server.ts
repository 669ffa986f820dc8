// `hushdns serve`: build the chain from the config, make sure a table exists, listen, and shut
// down cleanly. The chain order is written once, here, with the reason for each position.
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseHostPort, type LoadedConfig } from '../common/config.js';
import { createLogger, type Level, type Logger } from '../common/log.js';
import { PACKAGE_VERSION } from '../common/paths.js';
import { BLOCKLIST_FILE } from '../common/schema.js';
import { VendorCatalog } from '../common/vendors.js';
import { ClientAcl } from './acl.js';
import { BlocklistHandle } from './blocklist.js';
import { AnswerCache } from './cache.js';
import { Devices, reverseVia } from './devices.js';
import { createPacketHandler, type PacketHandler } from './handle.js';
import { resolveApiToken } from './http/auth.js';
import { startHttp, type HttpServer } from './http/server.js';
import { listenTcp, type TcpListener } from './listen/tcp.js';
import { listenUdp, type UdpListener } from './listen/udp.js';
import { FailureLog } from './pipeline/failure-log.js';
import { chain } from './pipeline/types.js';
import { QueryLog, queryLogOptions } from './querylog/querylog.js';
import { RateLimiter } from './rate-limit.js';
import { ListRefresher } from './refresh.js';
import { checkServeConfig } from './serve-config.js';
import { Sinkhole, type BlockMode } from './sinkhole.js';
import { accessStage, ClientGate, RATE_LIMITED_REASON } from './stages/access.js';
import { blockStage } from './stages/block.js';
import { cacheStage } from './stages/cache.js';
import { forwardStage } from './stages/forward.js';
import { hygieneStage } from './stages/hygiene.js';
import { localStage } from './stages/local.js';
import { specialStage } from './stages/special.js';
import { Stats } from './stats.js';
import { UpstreamPool } from './upstream/pool.js';
import { Pause, pauseGate, userFirst, UserRules } from './user-rules.js';

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

const SHUTDOWN_DEADLINE_MS = 5000;

export async function startServer(loaded: LoadedConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const config = loaded.config;
  const log = opts.log ?? createLogger(config['log-level'] as Level);
  const { upstreams, localRecords, router } = checkServeConfig(config);
  const dataDir = resolve(config['data-dir']);
  mkdirSync(dataDir, { recursive: true });
  const tablePath = join(dataDir, BLOCKLIST_FILE);
  const refresher = new ListRefresher(loaded, dataDir, log);

  if (!existsSync(tablePath)) {
    // First start: the bundled lists compile offline in a few seconds, so the network is protected
    // before any public list could be fetched; those follow in the background once we listen.
    log.info('no compiled table yet: compiling the bundled lists', { path: tablePath });
    await refresher.run({ offline: true });
  }

  const stats = new Stats();
  const catalog = VendorCatalog.load();
  const blocklist = new BlocklistHandle(tablePath, {
    watch: true,
    onSwap: (info) => {
      log.info('blocklist swapped in', { rules: info.rules, builtAt: new Date(info.builtAt).toISOString() });
      stats.onBlocklistSwap();
    },
    onError: (err) => log.error('new blocklist refused; the previous one keeps serving', { err, path: err.path }),
  });
  if (!blocklist.current()) log.warn('no usable blocklist: answering without blocking until one compiles', { path: tablePath });

  const cache = new AnswerCache({
    maxEntries: config['cache-size'],
    maxBytes: config['cache-max-bytes'],
    minTtl: Math.floor(config['cache-min-ttl'] / 1000),
    maxTtl: Math.floor(config['cache-max-ttl'] / 1000),
    staleMaxAgeMs: config['serve-stale'] ? config['serve-stale-max-age'] : 0,
  });
  // Every upstream may take its full timeout once; the chain's deadline leaves a margin on top.
  const budgetMs = config['upstream-timeout'] * Math.min(3, Math.max(1, upstreams.length));
  const poolOptions = { strategy: config['upstream-strategy'] as 'failover' | 'race', timeoutMs: config['upstream-timeout'], budgetMs };
  const pool = new UpstreamPool(upstreams, poolOptions, { tlsCa: opts.tlsCa });
  const routerPool = router ? new UpstreamPool([router], poolOptions, { tlsCa: opts.tlsCa }) : null;
  const sinkhole = new Sinkhole({ mode: config['block-mode'] as BlockMode, ttlSeconds: Math.floor(config['block-ttl'] / 1000), customIps: config['block-ip'] as string[] });

  // The user's own allow/deny entries (API, dashboard) decide before the compiled table; a pause
  // lets a client's queries (or everyone's) pass the block stage for a while.
  const userRules = UserRules.load(dataDir, catalog);
  const pause = new Pause();
  const decide = userFirst(userRules, (name) => blocklist.current()?.decide(name) ?? null);

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
      localStage(localRecords),
      // Signals (DoH canary, Private Relay, DDR) and LAN names: answered here, never by a list.
      specialStage({ blockPrivateRelay: config['block-private-relay'], localDomain: config['local-domain'], router: routerPool ? forwardStage(routerPool) : null }),
      // Before the cache: a newly blocked name is never served from cache.
      pauseGate(pause, blockStage(decide, sinkhole)),
      cacheStage(cache, { serveStale: config['serve-stale'], prefetch: config.prefetch, onPrefetchError: (err, name) => log.debug('prefetch failed', { name, err }) }),
    ],
    forwardStage(pool),
  );

  const querylog = await QueryLog.open(queryLogOptions(config, dataDir, catalog, log, decide));
  const failures = new FailureLog(log, opts.failureSummaryMs);
  const handle = createPacketHandler({
    handler: resolveQuery,
    observer: {
      answered: (query, answer, ms) => {
        stats.answered(query, answer, ms);
        querylog.record(query, answer, ms);
      },
      rejected: (protocol, reason) => stats.rejected(protocol, reason),
      failed: (query, err) => failures.failed(query, err),
    },
    deadlineMs: budgetMs + 1000,
    gate,
  });
  const onListenerError = (err: Error) => log.error('listener error', { err });

  const udp: UdpListener[] = [];
  const tcp: TcpListener[] = [];
  const closeAll = async () => {
    await Promise.all([...udp.map((l) => l.close()), ...tcp.map((l) => l.close())]);
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
    await closeAll();
    await querylog.close();
    blocklist.close();
    throw err;
  }

  const devices = new Devices({ names: config.devices, catalog, reverse: routerPool ? reverseVia((q) => routerPool.exchange(q)) : null, log });
  let http: HttpServer | null = null;
  const httpSpec = parseHostPort(config['http-listen']);
  if (httpSpec) {
    try {
      http = await startHttp(httpSpec.host, httpSpec.port, {
        stats,
        blocklist,
        pool,
        cache,
        refresher,
        version: PACKAGE_VERSION,
        querylog,
        devices,
        userRules,
        pause,
        catalog,
        apiToken: resolveApiToken(config['api-token'], dataDir, log),
        hosts: [...(config['http-hosts'] as string[]), ...localRecords.map((r) => r.name)],
        localDomain: config['local-domain'],
        log,
      });
    } catch (err) {
      await closeAll();
      await querylog.close();
      blocklist.close();
      throw err;
    }
  }
  log.info('hushdns is answering', {
    version: PACKAGE_VERSION,
    dns: udp.map((l) => `${l.address.host}:${l.address.port}`),
    http: http ? `${http.address.host}:${http.address.port}` : null,
    upstreams: upstreams.map((u) => u.url),
    rules: blocklist.current()?.info().rules ?? 0,
  });

  refresher.onCompiled = () => blocklist.reload();
  refresher.schedule(config['refresh-interval'], blocklist.current()?.info().builtAt ?? 0);

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      refresher.stop();
      const deadline = Date.now() + SHUTDOWN_DEADLINE_MS;
      // Stop taking queries, let the ones in flight be answered (TCP connections end once theirs
      // are written), then close the sockets.
      for (const l of udp) l.drain();
      const udpDrained = async () => {
        while (Date.now() < deadline && udp.some((l) => l.inFlight() > 0)) await new Promise((r) => setTimeout(r, 20));
      };
      await Promise.all([udpDrained(), ...tcp.map((l) => l.close(Math.max(0, deadline - Date.now())))]);
      await closeAll();
      failures.flush();
      await http?.close();
      await querylog.close();
      await pool.close();
      await routerPool?.close();
      blocklist.close();
      log.info('stopped');
    })();
    return stopping;
  };

  if (opts.installSignals) {
    const onTerm = (signal: string) => {
      log.info('shutting down', { signal });
      const force = setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS + 2000);
      force.unref();
      stop().then(() => process.exit(0));
    };
    process.once('SIGTERM', () => onTerm('SIGTERM'));
    process.once('SIGINT', () => onTerm('SIGINT'));
    process.on('SIGHUP', () => {
      // The table on disk now (a compile may have landed), then a fresh compile of the lists.
      // Settings other than the lists need a restart for now.
      log.info('SIGHUP: reloading the blocklist and refreshing the lists');
      blocklist.reload();
      void refresher.run({ offline: false });
    });
  }

  return { dns: { udp, tcp }, http, stats, blocklist, cache, pool, querylog, userRules, pause, devices, stop };
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

