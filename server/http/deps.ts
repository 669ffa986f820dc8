// Everything the HTTP side reads or changes, handed over by server.ts.
import type { Logger } from '../../common/log.js';
import type { VendorCatalog } from '../../common/vendors.js';
import type { BlocklistHandle } from '../blocklist.js';
import type { Devices } from '../devices.js';
import type { QueryLog } from '../querylog/querylog.js';
import type { ListRefresher } from '../refresh.js';
import type { Stats } from '../stats.js';
import type { UpstreamHealth } from '../upstream/pool.js';
import type { Pause, UserRules } from '../user-rules.js';

/** The answer cache's numbers (one cache, or the sum over the worker processes). */
export interface CacheView {
  readonly size: number;
  readonly byteSize: number;
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
}

/** A CacheView that asks `current()` each time: the cache a reload may replace. */
export function liveCacheView(current: () => CacheView): CacheView {
  return {
    get size() {
      return current().size;
    },
    get byteSize() {
      return current().byteSize;
    },
    get hits() {
      return current().hits;
    },
    get misses() {
      return current().misses;
    },
    get evictions() {
      return current().evictions;
    },
  };
}

/** Upstream health (one pool, or the worker processes' pools together). */
export interface PoolView {
  health(): UpstreamHealth[];
}

/** The worker processes of a cluster, for /api/health. */
export interface WorkersView {
  configured: number;
  running: number;
  processes: { id: number; pid: number | undefined; queries: number }[];
}

export interface HttpDeps {
  stats: Stats;
  blocklist: BlocklistHandle;
  pool: PoolView;
  cache: CacheView;
  refresher: ListRefresher;
  version: string;
  querylog: QueryLog;
  devices: Devices;
  userRules: UserRules;
  pause: Pause;
  catalog: VendorCatalog;
  /** Bearer token for changes; null: changes are turned off. */
  apiToken: string | null;
  /** Host names the dashboard may be reached by besides IPs and LAN names (DNS-rebinding guard). */
  hosts: readonly string[];
  localDomain: string;
  log: Logger;
  /** Cluster mode only: the worker processes. */
  workers?: () => WorkersView;
}
