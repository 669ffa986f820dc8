// The query log as the server uses it: record() on every answered query (cheap, never waits),
// a timer that hands the buffered rows to the writer at most once per flush interval (earlier
// only when the buffer is three quarters full), background pruning, and reads for the HTTP API.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../common/config.js';
import type { Logger } from '../../common/log.js';
import type { VendorCatalog } from '../../common/vendors.js';
import type { BlockDecision } from '../blocklist.js';
import type { Answer, Query } from '../pipeline/types.js';
import { inlineBackend, workerBackend, type StoreConfig, type WriterBackend } from './backend.js';
import { Recorder, type Anonymise } from './recorder.js';
import type { ReadArgs, ReadMethod, ReadResult } from './types.js';

export const QUERYLOG_FILE = 'querylog.sqlite';

export type QueryLogMode = 'disk' | 'memory' | 'off';

export interface QueryLogOptions {
  mode: QueryLogMode;
  dataDir: string;
  retentionMs: number;
  maxBytes: number;
  flushIntervalMs: number;
  /** Rows buffered between writes. */
  capacity: number;
  anonymise: Anonymise;
  excludeClients: readonly string[];
  excludeNames: readonly string[];
  catalog: VendorCatalog;
  log: Logger;
  describeBlock?: (name: string) => BlockDecision | null;
  /** auto: a worker thread when running from dist/, inline from the TypeScript sources. */
  backend?: 'auto' | 'worker' | 'inline';
  /** The compiled worker script (default: worker.js beside this module). */
  workerFile?: string;
  /** How often retention and the size cap are applied (default 10 minutes, first after 30 s). */
  maintainIntervalMs?: number;
}

export interface QueryLogStatus {
  mode: QueryLogMode | 'failed';
  backend: 'worker' | 'inline' | null;
  path: string | null;
  capacity: number;
  queued: number;
  dropped: number;
  excluded: number;
  flushes: number;
  rowsWritten: number;
  writeErrors: number;
  /** The last batch could not be written (disk full, file damaged…): the log is losing queries. */
  failing: boolean;
  lastError: string | null;
  lastFlushAt: number | null;
  lastFlushMs: number | null;
  maxFlushMs: number;
  flushIntervalMs: number;
}

export class QueryLogOffError extends Error {
  readonly code = 'querylog-off';
}

const WARN_EVERY_MS = 60_000;

export class QueryLog {
  private readonly recorder: Recorder | null;
  private readonly earlyAt: number;
  private flushTimer: NodeJS.Timeout | null = null;
  private maintainTimer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private earlyScheduled = false;
  private closed = false;
  private lastWarnAt = 0;
  private readonly st: QueryLogStatus;

  private constructor(
    private readonly opts: QueryLogOptions,
    private readonly backend: WriterBackend | null,
    failure: string | null,
  ) {
    const active = backend !== null;
    this.recorder = active
      ? new Recorder({ capacity: opts.capacity, anonymise: opts.anonymise, excludeClients: opts.excludeClients, excludeNames: opts.excludeNames, describeBlock: opts.describeBlock })
      : null;
    this.earlyAt = Math.max(1, Math.floor(opts.capacity * 0.75));
    this.st = {
      mode: failure ? 'failed' : opts.mode,
      backend: backend?.kind ?? null,
      path: opts.mode === 'disk' ? join(opts.dataDir, QUERYLOG_FILE) : null,
      capacity: opts.capacity,
      queued: 0,
      dropped: 0,
      excluded: 0,
      flushes: 0,
      rowsWritten: 0,
      writeErrors: 0,
      failing: false,
      lastError: failure,
      lastFlushAt: null,
      lastFlushMs: null,
      maxFlushMs: 0,
      flushIntervalMs: opts.flushIntervalMs,
    };
    if (active) {
      this.flushTimer = setInterval(() => this.tick(), opts.flushIntervalMs);
      this.flushTimer.unref();
      const every = opts.maintainIntervalMs ?? 600_000;
      const first = setTimeout(() => {
        void this.maintain();
        this.maintainTimer = setInterval(() => void this.maintain(), every);
        this.maintainTimer.unref();
      }, Math.min(30_000, every));
      first.unref();
      this.maintainTimer = first;
    }
  }

  /** Opens the log as configured. Never throws: a log that cannot open is reported and stays off, DNS goes on. */
  static async open(opts: QueryLogOptions): Promise<QueryLog> {
    if (opts.mode === 'off') return new QueryLog(opts, null, null);
    const config: StoreConfig = { path: opts.mode === 'memory' ? ':memory:' : join(opts.dataDir, QUERYLOG_FILE), retentionMs: opts.retentionMs, maxBytes: opts.maxBytes };
    const here = fileURLToPath(import.meta.url);
    const workerFile = opts.workerFile ?? join(dirname(here), 'worker.js');
    const want = opts.backend ?? 'auto';
    const useWorker = want === 'worker' || (want === 'auto' && here.endsWith('.js') && existsSync(workerFile));
    try {
      const backend = useWorker ? await workerBackend(config, workerFile) : inlineBackend(config, opts.catalog);
      if (backend.setAside) opts.log.warn('the query log could not be read; it was moved aside and a new one started', { path: config.path, movedTo: backend.setAside });
      return new QueryLog(opts, backend, null);
    } catch (err) {
      opts.log.error('the query log could not be opened; answering DNS without it', { path: config.path, err });
      return new QueryLog(opts, null, `cannot open ${config.path}: ${(err as Error).message}`);
    }
  }

  get active(): boolean {
    return this.recorder !== null && !this.closed;
  }

  /** Hot path: buffer one answered query. */
  record(query: Query, answer: Answer, ms: number): void {
    const r = this.recorder;
    if (r === null) return;
    r.record(query, answer, ms);
    if (r.length >= this.earlyAt && !this.earlyScheduled && this.inFlight === null) {
      this.earlyScheduled = true;
      setImmediate(() => {
        this.earlyScheduled = false;
        this.tick();
      });
    }
  }

  /** Writes everything recorded so far and waits until it is committed. */
  async flush(): Promise<void> {
    while (this.inFlight) await this.inFlight;
    if (this.recorder && this.recorder.length > 0 && this.backend) await this.startWrite();
  }

  read<M extends ReadMethod>(method: M, args: ReadArgs<M>): Promise<ReadResult<M>> {
    if (!this.backend || this.closed) return Promise.reject(new QueryLogOffError(this.st.mode === 'failed' ? `the query log is not available: ${this.st.lastError}` : 'the query log is off (--querylog off)'));
    return this.backend.read(method, args);
  }

  /** Retention and size cap now (also runs by itself in the background). */
  async maintain(): Promise<void> {
    if (!this.backend || this.closed) return;
    try {
      const r = await this.backend.maintain();
      if (r.deletedRows > 0) this.opts.log.debug('query log pruned', { rows: r.deletedRows, bytes: r.bytes, ms: Math.round(r.ms) });
    } catch (err) {
      this.noteError(err, 'pruning the query log failed');
    }
  }

  status(): QueryLogStatus {
    const r = this.recorder;
    return { ...this.st, queued: r?.length ?? 0, dropped: r?.dropped ?? 0, excluded: r?.excluded ?? 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.maintainTimer) clearInterval(this.maintainTimer);
    await this.flush();
    this.closed = true;
    await this.backend?.close();
  }

  private tick(): void {
    if (this.closed || this.inFlight || !this.recorder || this.recorder.length === 0) return;
    void this.startWrite();
  }

  private startWrite(): Promise<void> {
    const batch = this.recorder!.cut();
    const started = Date.now();
    const p = this.backend!.write(batch).then(
      (r) => {
        this.st.flushes++;
        this.st.failing = false;
        this.st.rowsWritten += r.rows;
        this.st.lastFlushAt = started;
        this.st.lastFlushMs = r.ms;
        if (r.ms > this.st.maxFlushMs) this.st.maxFlushMs = r.ms;
      },
      (err: unknown) => {
        this.st.writeErrors++;
        this.st.failing = true;
        this.noteError(err, `writing ${batch.n} queries to the log failed; they are lost`);
      },
    );
    const done = p.finally(() => {
      this.inFlight = null;
      // Rows piled up while this batch was written: do not wait for the timer if the buffer is filling.
      if (this.recorder && this.recorder.length >= this.earlyAt) this.tick();
    });
    this.inFlight = done;
    return done;
  }

  private noteError(err: unknown, msg: string): void {
    this.st.lastError = (err as Error).message ?? String(err);
    const now = Date.now();
    if (now - this.lastWarnAt >= WARN_EVERY_MS) {
      this.lastWarnAt = now;
      this.opts.log.warn(msg, { err });
    }
  }
}

/** The query-log settings of a loaded config. */
export function queryLogOptions(config: Config, dataDir: string, catalog: VendorCatalog, log: Logger, describeBlock: (name: string) => BlockDecision | null): QueryLogOptions {
  return {
    mode: config.querylog as QueryLogMode,
    dataDir,
    retentionMs: config['querylog-retention'],
    maxBytes: config['querylog-max-size'],
    flushIntervalMs: config['querylog-flush-interval'],
    capacity: config['querylog-queue'],
    anonymise: config['querylog-anonymise'] as Anonymise,
    excludeClients: config['querylog-exclude-clients'] as string[],
    excludeNames: config['querylog-exclude-names'] as string[],
    catalog,
    log,
    describeBlock,
  };
}
