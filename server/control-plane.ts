// The control side of `hushdns serve`: device names and the HTTP API with its metrics and
// dashboard, over the query log and the numbers of the DNS side. A single process runs it beside
// its DNS plane; in cluster mode the primary process runs it for all its workers.
import { parseHostPort, type LoadedConfig } from '../common/config.js';
import type { Logger } from '../common/log.js';
import { PACKAGE_VERSION } from '../common/paths.js';
import type { VendorCatalog } from '../common/vendors.js';
import type { BlocklistHandle } from './blocklist.js';
import { Devices, reverseVia } from './devices.js';
import { resolveApiToken } from './http/auth.js';
import type { CacheView, PoolView, WorkersView } from './http/deps.js';
import { startHttp, type HttpServer } from './http/server.js';
import type { QueryLog } from './querylog/querylog.js';
import type { ListRefresher } from './refresh.js';
import type { ServeSettings } from './serve-config.js';
import type { Stats } from './stats.js';
import type { UpstreamPool } from './upstream/pool.js';
import type { Pause, UserRules } from './user-rules.js';

export interface ControlPlaneOptions {
  log: Logger;
  dataDir: string;
  catalog: VendorCatalog;
  settings: ServeSettings;
  stats: Stats;
  cache: CacheView;
  pool: PoolView;
  blocklist: BlocklistHandle;
  /** The router now, for device names by reverse lookup; null when none is configured. */
  router: () => UpstreamPool | null;
  userRules: UserRules;
  pause: Pause;
  querylog: QueryLog;
  refresher: ListRefresher;
  /** Cluster mode only: the worker processes, for /api/health. */
  workers?: () => WorkersView;
}

export interface ControlPlane {
  http: HttpServer | null;
  devices: Devices;
  close(): Promise<void>;
}

export async function startControlPlane(loaded: LoadedConfig, opts: ControlPlaneOptions): Promise<ControlPlane> {
  const { config } = loaded;
  const { log, router } = opts;
  const viaRouter = reverseVia((q) => router()!.exchange(q));
  const devices = new Devices({ names: config.devices, catalog: opts.catalog, reverse: (address) => (router() ? viaRouter(address) : Promise.resolve(null)), log });
  const httpSpec = parseHostPort(config['http-listen']);
  const http = httpSpec
    ? await startHttp(httpSpec.host, httpSpec.port, {
        stats: opts.stats,
        blocklist: opts.blocklist,
        pool: opts.pool,
        cache: opts.cache,
        refresher: opts.refresher,
        version: PACKAGE_VERSION,
        querylog: opts.querylog,
        devices,
        userRules: opts.userRules,
        pause: opts.pause,
        catalog: opts.catalog,
        apiToken: resolveApiToken(config['api-token'], opts.dataDir, log),
        hosts: [...(config['http-hosts'] as string[]), ...opts.settings.localRecords.map((r) => r.name)],
        localDomain: config['local-domain'],
        log,
        workers: opts.workers,
      })
    : null;
  return {
    http,
    devices,
    close: async () => {
      await http?.close();
    },
  };
}
