// The query log as the server uses it: record() on every answered query (cheap, never waits),
// a timer that hands the buffered rows to the writer once per flush interval (earlier only when
// the buffer is three quarters full, i.e. beyond the rate it was sized for), background pruning,
// and reads for the HTTP API. A log that cannot write says so once, and DNS goes on.
import { existsSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../common/config.js';
import type { Logger } from '../../common/log.js';
import type { VendorCatalog } from '../../common/vendors.js';
import type { BlockDecision } from '../blocklist.js';
import type { Answer, Query } from '../pipeline/types.js';
import { inlineBackend, workerBackend, type StoreConfig, type WriterBackend } from './backend.js';
import { BatchStrings, BYTES_PER_ROW, Recorder, type Anonymise } from './recorder.js';
import type { Batch, ReadArgs, ReadMethod, ReadResult } from './types.js';

export const QUERYLOG_FILE = 'querylog.sqlite';

/**
 * The query rate the buffer is sized for: one core of hushdns answers 45–48k q/s under dnsperf
 * (bench/querylog.ts). At this rate every flush interval is one batch, without drops.
 */
export const DESIGN_RATE = 50_000;
/** Room for a slow write or a burst on top of one interval at the design rate. */
const HEADROOM = 1.5;
/** The sized buffer never exceeds this (35 MiB); longer intervals then write early above 0.75 × this / interval q/s. */
const MAX_SIZED_ROWS = 1_000_000;
/** Early write when the buffer is this full: only beyond the design rate. */
const EARLY_SHARE = 0.75;

/**
 * Rows the buffer may hold: what `querylog-queue` says, or for `auto` (0) one flush interval at
 * DESIGN_RATE with HEADROOM (5 s: 375 000 rows, 13.2 MiB at most, grown only as traffic needs).
 */
export function queueRows(configured: number, flushIntervalMs: number): number {
  if (configured > 0) return configured;
  return Math.min(MAX_SIZED_ROWS, Math.ceil(((DESIGN_RATE * flushIntervalMs) / 1000) * HEADROOM));
}

export { BYTES_PER_ROW };

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
  /** The recorder's string bound (RecorderOptions.maxStrings; tests make it small). */
  maxStrings?: number;
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
  /** The size cap is smaller than one hour of the log: only the newest hour is kept, and it is over the cap. */
  overCap: boolean;
  lastFlushAt: number | null;
  lastFlushMs: number | null;
  maxFlushMs: number;
  flushIntervalMs: number;
}

export class QueryLogOffError extends Error {
  readonly code = 'querylog-off';
}

export class QueryLog {
  private readonly recorder: Recorder | null;
  private readonly earlyAt: number;
  private flushTimer: NodeJS.Timeout | null = null;
  private maintainTimer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private earlyScheduled = false;
  private closing = false;
  private closed = false;
  /** When the last batch was handed to the writer: the next one goes one interval later. */
  private lastWriteAt = Date.now();
  private readonly st: QueryLogStatus;

  private constructor(
    private readonly opts: QueryLogOptions,
    private readonly backend: WriterBackend | null,
    failure: string | null,
  ) {
    const active = backend !== null;
    this.recorder = active
      ? new Recorder({ capacity: opts.capacity, anonymise: opts.anonymise, excludeClients: opts.excludeClients, excludeNames: opts.excludeNames, describeBlock: opts.describeBlock, maxStrings: opts.maxStrings })
      : null;
    this.earlyAt = Math.max(1, Math.floor(opts.capacity * EARLY_SHARE));
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
      overCap: false,
      lastFlushAt: null,
      lastFlushMs: null,
      maxFlushMs: 0,
      flushIntervalMs: opts.flushIntervalMs,
    };
    if (active) {
      this.schedule();
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
      if (backend.setAside) opts.log.warn(`the query log was moved aside and a new one started: ${backend.setAside.reason}`, { path: config.path, movedTo: backend.setAside.path });
      return new QueryLog(opts, backend, null);
    } catch (err) {
      const why = storageProblem(err, config.path);
      opts.log.error(`the query log cannot be opened: ${why}; answering DNS without it`, { path: config.path });
      return new QueryLog(opts, null, why);
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
    this.afterRecord(r);
  }

  /**
   * Writes early when the buffer is filling faster than the flush interval empties it, or when
   * the batch's new strings reach their bound (a flood of never-seen names: memory, not rows).
   */
  private afterRecord(r: Recorder): void {
    if (this.needsEarlyWrite(r) && !this.earlyScheduled && this.inFlight === null) {
      this.earlyScheduled = true;
      setImmediate(() => {
        this.earlyScheduled = false;
        this.tick();
      });
    }
  }

  /** The buffer fills faster than the flush interval empties it, or the batch's new strings reached their bound. */
  private needsEarlyWrite(r: Recorder): boolean {
    return r.length >= this.earlyAt || r.stringsFull;
  }

  /**
   * Rows a worker process recorded (cluster mode): queued like our own, written with them; and
   * the queries it dropped or excluded since its last batch, counted with ours.
   */
  ingest(batch: Batch | null, strings: BatchStrings, counts?: { dropped: number; excluded: number }): void {
    const r = this.recorder;
    if (r === null || this.closed) return;
    if (counts) r.countElsewhere(counts.dropped, counts.excluded);
    if (batch === null) return;
    r.append(batch, strings);
    this.afterRecord(r);
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
      if (r.deletedRows > 0 || r.deletedHours > 0) this.opts.log.debug('query log pruned', { rows: r.deletedRows, hours: r.deletedHours, strings: r.deletedStrings, bytes: r.bytes, ms: Math.round(r.ms) });
      if (r.overCap && !this.st.overCap) this.opts.log.warn(`the query log keeps only its newest hour and is still over querylog-max-size (${r.bytes} bytes): raise the cap`, { maxBytes: this.opts.maxBytes });
      this.st.overCap = r.overCap;
    } catch (err) {
      this.writeFailed(err, 'pruning');
    }
  }

  /** Queries per minute over the last five minutes (from counters on this thread, not the file). */
  recentPerMinute(now = Date.now()): number {
    return this.recorder?.rate.perMinute(now) ?? 0;
  }

  status(): QueryLogStatus {
    const r = this.recorder;
    return { ...this.st, queued: r?.length ?? 0, dropped: r?.dropped ?? 0, excluded: r?.excluded ?? 0 };
  }

  async close(): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.maintainTimer) clearTimeout(this.maintainTimer);
    await this.flush();
    this.closed = true;
    await this.backend?.close();
  }

  /** The next write one interval after the last one (a timer chain, not an interval: a slow write never causes two in a row). */
  private schedule(): void {
    if (this.closing) return;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    const wait = Math.max(0, this.lastWriteAt + this.opts.flushIntervalMs - Date.now());
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      if (this.inFlight) return; // its end schedules the next
      if (!this.recorder || this.recorder.length === 0) {
        this.lastWriteAt = Date.now();
        this.schedule();
      } else void this.startWrite();
    }, wait);
    this.flushTimer.unref();
  }

  private tick(): void {
    if (this.closed || this.inFlight || !this.recorder || this.recorder.length === 0) return;
    void this.startWrite();
  }

  private startWrite(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const batch = this.recorder!.cut();
    const started = (this.lastWriteAt = Date.now());
    const p = this.backend!.write(batch).then(
      (r) => {
        this.st.flushes++;
        this.st.rowsWritten += r.rows;
        this.st.lastFlushAt = started;
        this.st.lastFlushMs = r.ms;
        if (r.ms > this.st.maxFlushMs) this.st.maxFlushMs = r.ms;
        if (this.st.failing) {
          this.st.failing = false;
          this.opts.log.info('the query log is writing again', { path: this.st.path });
        }
      },
      (err: unknown) => {
        this.st.writeErrors++;
        this.writeFailed(err, `writing ${batch.n} queries`);
      },
    );
    const done = p.finally(() => {
      this.inFlight = null;
      // Rows piled up beyond the rate the buffer was sized for: do not wait for the timer.
      if (this.recorder && this.needsEarlyWrite(this.recorder)) this.tick();
      else this.schedule();
    });
    this.inFlight = done;
    return done;
  }

  /** One clear line when the log starts failing (not one per batch); /api/health carries it while it lasts. */
  private writeFailed(err: unknown, what: string): void {
    const why = storageProblem(err, this.st.path ?? 'the in-memory log');
    // One line when writes start failing, and one more whenever the cause reads differently (a
    // disk error first, then the read-only remount it triggered), never one per batch.
    const changed = why !== this.st.lastError;
    this.st.lastError = why;
    if (this.st.failing && !changed) return;
    this.st.failing = true;
    this.opts.log.error(`the query log cannot write: ${why}; DNS goes on, queries are not logged until this is fixed`, { path: this.st.path, while: what });
  }
}

/** What a storage error means for a person: disk full, read-only, or the error as SQLite says it. */
export function storageProblem(err: unknown, path: string): string {
  const e = err as { code?: string; message?: string };
  const code = e.code ?? '';
  const message = e.message ?? String(err);
  // SQLite often reports only "disk I/O error" or "unable to open": the folder itself says more.
  const folder = path.startsWith('/') || path.startsWith('.') ? folderProblem(dirname(path)) : null;
  if (folder) return `${folder}: ${path} cannot be written (${code || message})`;
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EFBIG' || /disk is full|ENOSPC|EFBIG/.test(message)) return `no space left for ${path} (${code || message})`;
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM' || /readonly|read-only/.test(message)) return `${path} is read-only (${code || message})`;
  if (code.startsWith('SQLITE_CANTOPEN') || /unable to open/.test(message)) return `${path} cannot be opened or created: check that its folder exists and is writable (${code || message})`;
  if (code.startsWith('SQLITE_IOERR')) return `the file system refused to write ${path}: disk full, a file size limit or a failing disk (${code}: ${message})`;
  return `${path}: ${message}`;
}

/** The query-log settings of a loaded config. */
export function queryLogOptions(config: Config, dataDir: string, catalog: VendorCatalog, log: Logger, describeBlock: (name: string) => BlockDecision | null): QueryLogOptions {
  return {
    mode: config.querylog as QueryLogMode,
    dataDir,
    retentionMs: config['querylog-retention'],
    maxBytes: config['querylog-max-size'],
    flushIntervalMs: config['querylog-flush-interval'],
    capacity: queueRows(config['querylog-queue'], config['querylog-flush-interval']),
    anonymise: config['querylog-anonymise'] as Anonymise,
    excludeClients: config['querylog-exclude-clients'] as string[],
    excludeNames: config['querylog-exclude-names'] as string[],
    catalog,
    log,
    describeBlock,
  };
}

/**
 * Why a folder cannot take writes (read-only, no permission, no space left), or null. It writes
 * and removes a small file: access(W_OK) is not enough, because an ext4 file system that hit an
 * error refuses writes ("emergency read-only") while its mount still says rw.
 */
function folderProblem(dir: string): string | null {
  const probe = join(dir, `.hushdns-write-check-${process.pid}`);
  try {
    writeFileSync(probe, 'x');
    unlinkSync(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EROFS') return `the data folder ${dir} is read-only (EROFS)`;
    if (code === 'ENOSPC' || code === 'EDQUOT') return `the data folder ${dir} is full (${code})`;
    if (code === 'ENOENT') return `the data folder ${dir} does not exist`;
    return `the data folder ${dir} is not writable (${code})`;
  }
  try {
    if (statfsSync(dir).bavail === 0) return `the data folder ${dir} is full (no space left on its file system)`;
  } catch {
    // statfs is informative only
  }
  return null;
}
