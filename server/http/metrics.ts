// GET /metrics: Prometheus text format through prom-client, in a registry of our own (never the
// global one, so two servers in one process — tests — do not collide). Nothing is counted here
// per query: on each scrape the metrics are read from Stats, the cache, the upstream pool, the
// blocklist and the query log, which already keep the numbers.
import client from 'prom-client';
import type { BlocklistHandle } from '../blocklist.js';
import type { QueryLog } from '../querylog/querylog.js';
import { LATENCY_BUCKETS_MS, REFUSAL_CAUSES, type Stats } from '../stats.js';
import type { UpstreamHealth } from '../upstream/pool.js';
import type { Pause } from '../user-rules.js';
import type { CacheView, PoolView } from './deps.js';

export interface MetricsDeps {
  stats: Stats;
  cache: CacheView;
  pool: PoolView;
  blocklist: BlocklistHandle;
  querylog: QueryLog;
  pause: Pause;
}

type Labels = Record<string, string | number>;
type Sample = { labels: Labels; value: number };

/**
 * A metric whose samples are computed at scrape time. prom-client's own classes keep their
 * values and offer no way to set a histogram's buckets; the registry only needs name, help, type
 * and get(), so this adapter lets it print numbers we already hold.
 */
function computed(registry: client.Registry, name: string, help: string, type: 'counter' | 'gauge', samples: () => Sample[]): void {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum' as const,
    collect: () => undefined,
    get: async () => ({ name, help, type, aggregator: 'sum', values: samples() }),
    reset: () => undefined,
  };
  registry.registerMetric(metric as unknown as client.Metric);
}

type HistogramSeries = { labels: Labels; counts: ArrayLike<number>; sum: number };

/** Histograms (one series per label set) from bucket counts we keep; buckets are upper bounds, the last count is +Inf. */
function histogram(registry: client.Registry, name: string, help: string, buckets: readonly number[], read: () => HistogramSeries[]): void {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum' as const,
    collect: () => undefined,
    get: async () => {
      const values: { metricName: string; labels: Labels; value: number }[] = [];
      for (const { labels, counts, sum } of read()) {
        let cumulative = 0;
        for (let i = 0; i < buckets.length; i++) {
          cumulative += counts[i];
          values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: buckets[i] }, value: cumulative });
        }
        cumulative += counts[buckets.length];
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
        values.push({ metricName: `${name}_sum`, labels, value: sum });
        values.push({ metricName: `${name}_count`, labels, value: cumulative });
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
    reset: () => undefined,
  };
  registry.registerMetric(metric as unknown as client.Metric);
}

export function createMetrics(deps: MetricsDeps): client.Registry {
  const registry = new client.Registry();
  const { stats, cache, pool, blocklist, querylog, pause } = deps;

  computed(registry, 'hushdns_queries_total', 'Answered DNS queries by outcome, protocol and record type', 'counter', () =>
    stats.queryCounts().map((c) => ({ labels: { outcome: c.outcome, protocol: c.protocol, type: c.type }, value: c.count })),
  );
  computed(registry, 'hushdns_rejected_packets_total', 'Packets answered or dropped before the resolver chain (malformed, not a query)', 'counter', () =>
    [...stats.rejectedByReason].map(([key, value]) => {
      const colon = key.indexOf(': ');
      return { labels: { protocol: key.slice(0, colon), reason: key.slice(colon + 2) }, value };
    }),
  );
  const seconds = LATENCY_BUCKETS_MS.map((ms) => ms / 1000);
  histogram(registry, 'hushdns_answer_duration_seconds', 'Time from receiving a query to answering it', seconds, () => [{ labels: {}, counts: stats.latency, sum: stats.latencySumMs / 1000 }]);
  computed(registry, 'hushdns_refused_total', 'Queries answered REFUSED, by cause: rate-limit (a client over --rate-limit), acl (outside allow-clients), other (zone transfers, other classes)', 'counter', () =>
    REFUSAL_CAUSES.map((cause, i) => ({ labels: { cause }, value: stats.refusedByCause[i] })),
  );

  computed(registry, 'hushdns_cache_hits_total', 'Answers served from the cache while fresh', 'counter', () => [{ labels: {}, value: cache.hits }]);
  computed(registry, 'hushdns_cache_misses_total', 'Cache lookups that found nothing usable', 'counter', () => [{ labels: {}, value: cache.misses }]);
  computed(registry, 'hushdns_cache_evictions_total', 'Entries pushed out of the cache by its size limits', 'counter', () => [{ labels: {}, value: cache.evictions }]);
  computed(registry, 'hushdns_cache_entries', 'Answers in the cache', 'gauge', () => [{ labels: {}, value: cache.size }]);
  computed(registry, 'hushdns_cache_bytes', 'Approximate memory held by the cache', 'gauge', () => [{ labels: {}, value: cache.byteSize }]);

  const perUpstream = (pick: (h: UpstreamHealth) => number) => () => pool.health().map((h) => ({ labels: { upstream: h.name }, value: pick(h) }));
  computed(registry, 'hushdns_upstream_queries_total', 'Queries sent to each upstream', 'counter', perUpstream((h) => h.counters.sent));
  computed(registry, 'hushdns_upstream_answers_total', 'Valid responses from each upstream (any RCODE)', 'counter', perUpstream((h) => h.counters.answered));
  computed(registry, 'hushdns_upstream_errors_total', 'Failed exchanges with each upstream, by kind', 'counter', () =>
    pool.health().flatMap((h) => [
      { labels: { upstream: h.name, kind: 'timeout' }, value: h.counters.timeouts },
      { labels: { upstream: h.name, kind: 'error' }, value: h.counters.errors },
      { labels: { upstream: h.name, kind: 'mismatched' }, value: h.counters.mismatched },
    ]),
  );
  computed(registry, 'hushdns_upstream_latency_seconds_total', 'Sum of answer times of each upstream; divide by hushdns_upstream_answers_total for the mean', 'counter', perUpstream((h) => h.counters.latencyMsSum / 1000));
  histogram(registry, 'hushdns_upstream_answer_duration_seconds', 'Time to answer queries forwarded to each upstream, by the upstream that answered: from arrival to answer, as the client waited (failover included)', seconds, () =>
    [...stats.upstreamLatency].map(([upstream, h]) => ({ labels: { upstream }, counts: h.counts, sum: h.sumMs / 1000 })),
  );
  computed(registry, 'hushdns_upstream_up', '1 when the upstream is considered healthy', 'gauge', perUpstream((h) => (h.up ? 1 : 0)));

  computed(registry, 'hushdns_blocklist_rules', 'Rules in the compiled blocklist in use', 'gauge', () => [{ labels: {}, value: blocklist.current()?.info().rules ?? 0 }]);
  computed(registry, 'hushdns_blocklist_patterns', 'Regex and glob patterns in the blocklist in use', 'gauge', () => [{ labels: {}, value: blocklist.current()?.info().patterns ?? 0 }]);
  computed(registry, 'hushdns_blocklist_age_seconds', 'Age of the blocklist in use (since it was compiled)', 'gauge', () => {
    const builtAt = blocklist.current()?.info().builtAt;
    return builtAt ? [{ labels: {}, value: Math.max(0, (Date.now() - builtAt) / 1000) }] : [];
  });
  computed(registry, 'hushdns_blocklist_swaps_total', 'Newly compiled blocklists swapped in', 'counter', () => [{ labels: {}, value: stats.blocklistSwaps }]);
  computed(registry, 'hushdns_blocking_paused', '1 while blocking is paused for everyone', 'gauge', () => [{ labels: {}, value: pause.state().everyone ? 1 : 0 }]);

  computed(registry, 'hushdns_querylog_queue_depth', 'Queries waiting to be written to the query log', 'gauge', () => [{ labels: {}, value: querylog.status().queued }]);
  computed(registry, 'hushdns_querylog_queue_capacity', 'Queries the query-log buffer holds before it drops', 'gauge', () => [{ labels: {}, value: querylog.status().capacity }]);
  computed(registry, 'hushdns_querylog_dropped_total', 'Queries left out of the log because its buffer was full', 'counter', () => [{ labels: {}, value: querylog.status().dropped }]);
  computed(registry, 'hushdns_querylog_rows_written_total', 'Queries written to the query log', 'counter', () => [{ labels: {}, value: querylog.status().rowsWritten }]);
  computed(registry, 'hushdns_querylog_flushes_total', 'Batches written to the query log (one transaction each)', 'counter', () => [{ labels: {}, value: querylog.status().flushes }]);
  computed(registry, 'hushdns_querylog_write_errors_total', 'Batches the query log failed to write', 'counter', () => [{ labels: {}, value: querylog.status().writeErrors }]);
  computed(registry, 'hushdns_querylog_failing', '1 while the query log cannot write (disk full, read-only) or could not open', 'gauge', () => {
    const st = querylog.status();
    return [{ labels: {}, value: st.failing || st.mode === 'failed' ? 1 : 0 }];
  });
  computed(registry, 'hushdns_querylog_last_flush_seconds', 'Time the last query-log batch took to write', 'gauge', () => {
    const ms = querylog.status().lastFlushMs;
    return ms === null ? [] : [{ labels: {}, value: ms / 1000 }];
  });

  client.collectDefaultMetrics({ register: registry });
  return registry;
}
