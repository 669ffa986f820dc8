// Cache: fresh hits answered here; misses go on to the forward stage and are stored on the way
// back. When every upstream fails, an expired entry within the stale window is served with a
// 30 s TTL and EDE 3 (RFC 8767). Popular entries are refreshed shortly before they expire.
import { cacheKey, type AnswerCache, type CacheEntry } from '../cache.js';
import type { Answer, Handler, Query, Stage } from '../pipeline/types.js';
import { renderUpstreamAnswer } from '../upstream-answer.js';
import { EDE, RCODE } from '../wire/constants.js';

export interface CacheStageOptions {
  serveStale: boolean;
  prefetch: boolean;
  /** Called with errors of background refreshes (they have no client to answer). */
  onPrefetchError?: (err: unknown, name: string) => void;
}

const STALE_TTL = 30;
/** Refresh when less than this share of the TTL is left, for entries asked for at least twice. */
const PREFETCH_SHARE = 0.1;
const PREFETCH_MIN_TTL = 10;

export function cacheStage(cache: AnswerCache, opts: CacheStageOptions): Stage {
  return (next: Handler) => {
    if (!cache.enabled) return next;
    const store = (key: string, answer: Answer): Answer => {
      if (answer.upstreamBody && answer.upstreamInfo) cache.set(key, answer.upstreamBody, answer.upstreamInfo, Date.now());
      return answer;
    };
    const refresh = (key: string, query: Query, entry: CacheEntry): void => {
      entry.refreshing = true;
      Promise.resolve()
        .then(() => next(query))
        .then((a) => store(key, a))
        .catch((err: unknown) => opts.onPrefetchError?.(err, query.q.name))
        .finally(() => {
          entry.refreshing = false;
        });
    };

    return (query: Query) => {
      const q = query.q;
      const key = cacheKey(q.name, q.qtype, q.edns?.dnssecOk ?? false, q.cd);
      const now = Date.now();
      const entry = cache.get(key, now);
      if (entry && now < entry.expiresAt) {
        entry.hits++;
        const left = entry.expiresAt - now;
        if (opts.prefetch && !entry.refreshing && entry.hits >= 2 && entry.ttl >= PREFETCH_MIN_TTL && left < entry.ttl * 1000 * PREFETCH_SHARE) {
          refresh(key, query, entry);
        }
        return {
          wire: renderUpstreamAnswer(entry.body, entry.ttlOffsets, query, Math.floor((now - entry.storedAt) / 1000)),
          outcome: 'cached',
          reason: 'cache',
          rcode: entry.rcode,
          cnames: entry.cnames,
        };
      }
      const stale = opts.serveStale ? entry : undefined;
      const serveStale = (why: string): Answer => ({
        wire: renderUpstreamAnswer(stale!.body, stale!.ttlOffsets, query, 0x7fffffff, { ttlFloor: STALE_TTL, ede: { code: EDE.StaleAnswer, text: why } }),
        outcome: 'stale',
        reason: `stale answer: ${why}`,
        rcode: stale!.rcode,
        cnames: stale!.cnames,
      });
      return Promise.resolve()
        .then(() => next(query))
        .then(
          (answer) => {
            if (stale && answer.rcode === RCODE.SERVFAIL) return serveStale(`upstreams answered SERVFAIL`);
            return store(key, answer);
          },
          (err: unknown) => {
            if (stale) return serveStale((err as Error).message);
            throw err;
          },
        );
    };
  };
}
