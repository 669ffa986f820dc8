// Cache: fresh hits answered here; misses go on to the forward stage and are stored on the way
// back. Serve-stale (RFC 8767): when an entry has expired but is within the stale window, the
// refresh starts at once, and the client gets the stale data (30 s TTL, EDE 3) if every upstream
// fails, or if no answer has come within the client response timer (§5: 1.8 s); the refresh then
// finishes in the background and updates the entry. Popular entries are refreshed shortly before
// they expire.
import { cacheKey, type AnswerCache, type CacheEntry } from '../cache.js';
import type { Answer, Handler, Query, Stage } from '../pipeline/types.js';
import { renderUpstreamAnswer } from '../upstream-answer.js';
import { EDE, RCODE } from '../wire/constants.js';

export interface CacheStageOptions {
  serveStale: boolean;
  prefetch: boolean;
  /** Called with errors of background refreshes (they have no client to answer). */
  onPrefetchError?: (err: unknown, name: string) => void;
  /** RFC 8767's client response timer: how long a client with stale data to fall back on waits for upstreams. */
  staleAfterMs?: number;
}

const STALE_TTL = 30;
/** RFC 8767 §5 suggests 1.8 s: under the 2 s many stubs wait before they retry or give up. */
export const CLIENT_RESPONSE_TIMER_MS = 1800;
/** Refresh when less than this share of the TTL is left, for entries asked for at least twice. */
const PREFETCH_SHARE = 0.1;
const PREFETCH_MIN_TTL = 10;

export function cacheStage(cache: AnswerCache, opts: CacheStageOptions): Stage {
  const staleAfterMs = opts.staleAfterMs ?? CLIENT_RESPONSE_TIMER_MS;
  return (next: Handler) => {
    if (!cache.enabled) return next;
    const store = (key: string, query: Query, answer: Answer): Answer => {
      if (!answer.upstreamBody || !answer.upstreamInfo) return answer;
      const entry = cache.set(key, answer.upstreamBody, answer.upstreamInfo, Date.now());
      // The cache clamped a TTL: this client gets what later clients will get.
      if (entry && entry.body !== answer.upstreamBody) answer.wire = renderUpstreamAnswer(entry.body, entry.ttlOffsets, entry.rcode, query, 0);
      return answer;
    };
    const refresh = (key: string, query: Query, entry: CacheEntry): void => {
      entry.refreshing = true;
      Promise.resolve()
        .then(() => next(query))
        .then((a) => store(key, query, a))
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
          wire: renderUpstreamAnswer(entry.body, entry.ttlOffsets, entry.rcode, query, Math.floor((now - entry.storedAt) / 1000)),
          outcome: 'cached',
          reason: 'cache',
          rcode: entry.rcode,
          cnames: entry.cnames,
        };
      }
      if (!opts.serveStale || !entry) return Promise.resolve().then(() => next(query)).then((a) => store(key, query, a));
      return withStaleFallback(query, entry, staleAfterMs, () => Promise.resolve().then(() => next(query)).then((a) => store(key, query, a)), opts.onPrefetchError);
    };
  };
}

/**
 * Ask the upstreams, falling back on the expired `entry`: at once when they fail or answer
 * SERVFAIL, and after `afterMs` when they are slow, leaving the refresh running (its result lands
 * in the cache through `ask`; a late failure goes to `onLateError`).
 */
function withStaleFallback(query: Query, entry: CacheEntry, afterMs: number, ask: () => Promise<Answer>, onLateError?: (err: unknown, name: string) => void): Promise<Answer> {
  return new Promise<Answer>((resolve) => {
    let answered = false;
    const answer = (a: Answer) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      resolve(a);
    };
    const timer = setTimeout(() => answer(staleAnswer(query, entry, `no upstream answer within ${afterMs} ms`)), afterMs);
    ask().then(
      (a) => answer(a.rcode === RCODE.SERVFAIL ? staleAnswer(query, entry, 'upstreams answered SERVFAIL') : a),
      (err: unknown) => {
        if (answered) onLateError?.(err, query.q.name);
        answer(staleAnswer(query, entry, err instanceof Error ? err.message : String(err)));
      },
    );
  });
}

function staleAnswer(query: Query, entry: CacheEntry, why: string): Answer {
  return {
    wire: renderUpstreamAnswer(entry.body, entry.ttlOffsets, entry.rcode, query, 0x7fffffff, { ttlFloor: STALE_TTL, ede: { code: EDE.StaleAnswer, text: why } }),
    outcome: 'stale',
    reason: `stale answer: ${why}`,
    rcode: entry.rcode,
    cnames: entry.cnames,
  };
}
