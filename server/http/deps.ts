// Everything the HTTP side reads or changes, handed over by server.ts.
import type { Logger } from '../../common/log.js';
import type { VendorCatalog } from '../../common/vendors.js';
import type { BlocklistHandle } from '../blocklist.js';
import type { AnswerCache } from '../cache.js';
import type { Devices } from '../devices.js';
import type { QueryLog } from '../querylog/querylog.js';
import type { ListRefresher } from '../refresh.js';
import type { Stats } from '../stats.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { Pause, UserRules } from '../user-rules.js';

export interface HttpDeps {
  stats: Stats;
  blocklist: BlocklistHandle;
  pool: UpstreamPool;
  cache: AnswerCache;
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
}
