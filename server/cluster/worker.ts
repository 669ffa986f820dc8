// One worker process of a cluster: a DNS plane on the listening sockets it shares with the other
// workers (the primary holds them), its answered queries sent to the primary's query log in
// batches, its counters reported every second. The primary tells it when the user's entries, a
// pause or the table change, and when to stop.
import cluster from 'node:cluster';
import { resolve } from 'node:path';
import { reloadConfig, type LoadedConfig } from '../../common/config.js';
import { UserError } from '../../common/errors.js';
import { createLogger, type Level } from '../../common/log.js';
import { VendorCatalog } from '../../common/vendors.js';
import { startDnsPlane, type DnsPlane, type QueryRecorder } from '../dns-plane.js';
import type { Answer, Query } from '../pipeline/types.js';
import { queueRows } from '../querylog/querylog.js';
import { Recorder } from '../querylog/recorder.js';
import { checkServeConfig } from '../serve-config.js';
import type { StartOptions } from '../server.js';
import type { Decider } from '../stages/block.js';
import { Stats } from '../stats.js';
import type { ToPrimary, ToWorker } from './messages.js';

/** How often counters go to the primary (its /metrics and /api/health lag by at most this). */
const SNAPSHOT_MS = 1000;
/** How often answered queries go to the primary's query log (it writes on its own interval). */
const LOG_BATCH_MS = 500;

function send(message: ToPrimary): Promise<void> {
  return new Promise((done) => {
    if (!process.send || !process.connected) return done();
    process.send(message, undefined, undefined, () => done());
  });
}

export async function runWorker(loaded: LoadedConfig, opts: StartOptions): Promise<void> {
  const config = loaded.config;
  const log = (opts.log ?? createLogger(config['log-level'] as Level)).child({ worker: cluster.worker?.id ?? process.pid });
  // The primary stops and reloads its workers by message; a signal to the whole process group must
  // not cut a stop short, nor end a worker (SIGHUP's default action).
  process.on('SIGTERM', () => undefined);
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);

  let dns: DnsPlane;
  const stats = new Stats();
  try {
    dns = await startDnsPlane(loaded, {
      log,
      settings: checkServeConfig(config),
      dataDir: resolve(config['data-dir']),
      catalog: VendorCatalog.load(),
      stats,
      swapLogLevel: 'debug',
      tlsCa: opts.tlsCa,
      failureSummaryMs: opts.failureSummaryMs,
      openRecorder: async (decide) => (config.querylog === 'off' ? { record: () => undefined, close: async () => undefined } : new LogForwarder(loaded, decide)),
    });
  } catch (err) {
    await send({ t: 'fatal', message: (err as Error).message, user: err instanceof UserError });
    process.exit(2);
  }

  const report = () =>
    send({
      t: 'snapshot',
      stats: stats.snapshot(),
      cache: { size: dns.cache.size, byteSize: dns.cache.byteSize, hits: dns.cache.hits, misses: dns.cache.misses, evictions: dns.cache.evictions },
      upstreams: dns.pool.health(),
    });
  const reporter = setInterval(() => void report(), SNAPSHOT_MS);

  let running = loaded;
  let stopping: Promise<void> | null = null;
  const stop = (deadline: number) => {
    stopping ??= (async () => {
      clearInterval(reporter);
      await dns.stopListening(deadline);
      await dns.close(); // the last queries go to the primary here
      await report();
      process.exit(0);
    })();
    return stopping;
  };

  process.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'user-rules':
        try {
          dns.userRules.reload();
        } catch (err) {
          log.error('could not read the user entries the primary saved; keeping the previous ones', { err });
        }
        break;
      case 'pause':
        dns.pause.apply(m.state);
        break;
      case 'reload-table':
        dns.blocklist.reload();
        break;
      case 'reload-config':
        // The primary checked the new configuration already; a failure here is logged, not fatal.
        try {
          const next = reloadConfig(running);
          dns.reconfigure(next);
          running = next;
        } catch (err) {
          log.error('could not apply the reloaded configuration; keeping the running one', { err });
        }
        break;
      case 'stop':
        void stop(m.deadline);
        break;
    }
  });
  // The primary is gone (killed): nobody coordinates any more, so stop on our own.
  process.on('disconnect', () => void stop(Date.now() + 2000));
  await send({ t: 'ready', dns: dns.udp.map((l) => l.address) });
}

/**
 * The worker's side of the query log: the same recorder as a single process, cut into batches for
 * the primary (early when a batch's new strings reach their bound), with the queries it dropped
 * or excluded since the last batch.
 */
class LogForwarder implements QueryRecorder {
  private readonly recorder: Recorder;
  private readonly timer: NodeJS.Timeout;
  /** Dropped and excluded as far as the primary was told. */
  private sentDropped = 0;
  private sentExcluded = 0;
  private earlyScheduled = false;

  constructor(loaded: LoadedConfig, decide: Decider) {
    const config = loaded.config;
    this.recorder = new Recorder({
      capacity: queueRows(config['querylog-queue'], LOG_BATCH_MS),
      // The primary anonymises, with one key for every worker, so a device keeps one pseudonym.
      anonymise: 'off',
      excludeClients: config['querylog-exclude-clients'] as string[],
      excludeNames: config['querylog-exclude-names'] as string[],
      describeBlock: decide,
    });
    this.timer = setInterval(() => void this.forward(), LOG_BATCH_MS);
  }

  record(query: Query, answer: Answer, ms: number): void {
    this.recorder.record(query, answer, ms);
    // A flood of new names: send the batch now rather than hold its strings until the interval.
    if (this.recorder.stringsFull && !this.earlyScheduled) {
      this.earlyScheduled = true;
      setImmediate(() => {
        this.earlyScheduled = false;
        void this.forward();
      });
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.forward();
  }

  private forward(): Promise<void> {
    const r = this.recorder;
    const dropped = r.dropped - this.sentDropped;
    const excluded = r.excluded - this.sentExcluded;
    if (r.length === 0 && dropped === 0 && excluded === 0) return Promise.resolve();
    this.sentDropped = r.dropped;
    this.sentExcluded = r.excluded;
    return send({ t: 'log', batch: r.length > 0 ? r.cut() : null, dropped, excluded });
  }
}
