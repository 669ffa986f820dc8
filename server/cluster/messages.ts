// What a cluster's primary and worker processes tell each other over the IPC channel (structured
// clone: typed arrays travel as they are). Workers report; the primary tells them what changed.
import type { Batch } from '../querylog/types.js';
import type { StatsSnapshot } from '../stats.js';
import type { UpstreamHealth } from '../upstream/pool.js';
import type { PauseState } from '../user-rules.js';

export interface CacheCounters {
  size: number;
  byteSize: number;
  hits: number;
  misses: number;
  evictions: number;
}

export type ToPrimary =
  /** Listening; the addresses its DNS sockets are bound to. */
  | { t: 'ready'; dns: { host: string; port: number }[] }
  /** Could not start; `user` when the message is the user's to act on (a port in use, a bad setting). */
  | { t: 'fatal'; message: string; user: boolean }
  /** Its counters now (every second, and once more when it stops). */
  | { t: 'snapshot'; stats: StatsSnapshot; cache: CacheCounters; upstreams: UpstreamHealth[] }
  /**
   * Queries it answered, for the query log (null: none since the last message), and how many it
   * left out of its log since the last message: dropped (its buffer was full) and excluded.
   */
  | { t: 'log'; batch: Batch | null; dropped: number; excluded: number };

export type ToWorker =
  /** The user's allow/deny entries changed on disk. */
  | { t: 'user-rules' }
  | { t: 'pause'; state: PauseState }
  /** A new compiled table may be in place (the file watch would notice too, a little later). */
  | { t: 'reload-table' }
  /** The configuration changed (SIGHUP): read it again and rebuild the chain. */
  | { t: 'reload-config' }
  /** Stop taking queries, answer those in flight, report, exit. */
  | { t: 'stop'; deadline: number };
