// One compile: sources → fetch → per source: parse → normalise → exclusions and inclusions →
// canary guard (read-list.ts) → writer: dedupe, compress, Bloom filter, atomic swap → report.
// Lists are streamed line by line; only the writer's bounded SQLite staging holds entries, so
// memory does not grow with list size.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parseUserEntry } from '../common/names.js';
import { BLOCKLIST_FILE, BLOCKLIST_PREV_FILE } from '../common/schema.js';
import { VendorCatalog } from '../common/vendors.js';
import { diffTables } from './diff.js';
import type { FetchResult } from './fetch.js';
import { emptyCounts, readList, vendorLookup, type ListContext, type ListCounts } from './read-list.js';
import type { SourceSpec } from './sources.js';
import { EntryFilter, buildFilters } from './transforms/filter.js';
import { BlocklistWriter, readPreviousSources, type PreviousSource, type SourceRecord, type WriteStats } from './write-db.js';
import { UserError } from '../common/errors.js';

export interface CompileOptions {
  dataDir: string;
  sources: SourceSpec[];
  level: 'standard' | 'strict';
  /** Global exclusions (config `exclude`). */
  exclude: string[];
  /** Global inclusions (config `include`): when not empty, only matching entries are kept. */
  include?: string[];
  /** The user's own entries: `name` covers the subtree, `=name` only the name. They beat every list. */
  allow: string[];
  deny: string[];
  /** timeoutMs: deadline for one list, retries included. */
  fetch: { timeoutMs: number; maxBytes: number; concurrency: number; retries?: number; retryBaseMs?: number };
  compilerVersion: string;
  /** Defaults to lists/vendors.json. */
  catalog?: VendorCatalog;
  onProgress?: (event: ProgressEvent) => void;
}

export type ProgressEvent =
  | { kind: 'fetched'; id: string; status: FetchResult['status'] }
  | { kind: 'parsed'; id: string; entries: number; invalid: number };

export interface SourceReport extends Omit<ListCounts, 'error' | 'valid'> {
  id: string;
  origin: SourceSpec['origin'];
  url: string | null;
  status: SourceRecord['status'];
  /** Names this list is credited with that the last build did not credit it with (null: not counted). */
  added: number | null;
  removed: number | null;
  /** entries minus the same source's entries in the previous build (null: not in the previous build). */
  entriesDelta: number | null;
  error: string | null;
}

export interface CompileReport {
  ok: boolean;
  path: string;
  /** False when the compile failed: the table at `path` is the one that was there before. */
  written: boolean;
  sources: SourceReport[];
  totals: Pick<WriteStats, 'entries' | 'rules' | 'duplicates' | 'compressed' | 'patterns' | 'bytes'> & {
    added: number | null;
    removed: number | null;
    /** Why added/removed were not counted, in total or per list (null when they were, or when there was no previous build). */
    diffSkipped: string | null;
  };
  warnings: string[];
  ms: number;
}

export class CompileError extends UserError {
  readonly code = 'compile-failed';
  constructor(
    message: string,
    readonly report: Omit<CompileReport, 'ok'> | null,
  ) {
    super(message);
  }
}

/**
 * A fresh download is rejected, for its last good copy, when it holds no valid entry at all, or
 * fewer than this share of what the last build read from the same source (and that was at least
 * COLLAPSE_MIN entries): what an error page, a truncated file or a parking page looks like.
 */
const COLLAPSE_SHARE = 0.1;
const COLLAPSE_MIN = 100;

export async function compile(opts: CompileOptions): Promise<CompileReport> {
  const started = Date.now();
  const filters = buildFilters({ exclude: opts.exclude, include: opts.include ?? [] }, opts.sources);
  const catalog = opts.catalog ?? VendorCatalog.load();
  const livePath = join(opts.dataDir, BLOCKLIST_FILE);
  const previous = readPreviousSources(livePath);
  const fetched = await fetchRemote(opts);
  let writer: BlocklistWriter | null = null;
  const reports: SourceReport[] = [];
  const warnings: string[] = [];
  const vendors = vendorLookup(catalog);
  try {
    writer = BlocklistWriter.create(opts.dataDir, { expectedNames: estimateNames(opts, fetched) });
    for (const spec of opts.sources) {
      const fr = spec.url ? fetched.get(spec.id) : undefined;
      const filter = new EntryFilter(filters.global, filters.bySource.get(spec.id)!);
      const report = await compileSource(writer, spec, fr, { level: opts.level, filter, vendors }, previous.get(spec.id));
      reports.push(report);
      opts.onProgress?.({ kind: 'parsed', id: spec.id, entries: report.entries, invalid: report.invalid });
      if (report.canary.length > 0) {
        warnings.push(`${spec.id} lists ${report.canary.join(', ')}; not written (hushdns answers these itself; a sinkhole answer would switch browsers to their own DoH)`);
      }
      if (report.canaryPatterns.length > 0) {
        warnings.push(`${spec.id} has patterns that also match names hushdns answers itself: ${report.canaryPatterns.join('; ')}; stored with a guard so they never decide those names`);
      }
      if (report.status === 'stale') warnings.push(`${spec.id}: using the last good copy (${report.error})`);
    }
    addUserEntries(writer, opts);

    const failedRequired = reports.filter((r) => r.status === 'failed' && opts.sources.find((s) => s.id === r.id)?.required);
    const usable = reports.filter((r) => r.status !== 'failed');
    if (failedRequired.length > 0 || usable.length === 0) {
      const why =
        failedRequired.length > 0
          ? `required source ${failedRequired.map((r) => `${r.id} (${r.error})`).join(', ')} failed`
          : 'no source could be read';
      writer.abort();
      throw new CompileError(`compile failed: ${why}; the previous table was left in place`, {
        path: livePath,
        written: false,
        sources: reports,
        totals: { entries: 0, rules: 0, duplicates: 0, compressed: 0, patterns: 0, bytes: 0, added: null, removed: null, diffSkipped: null },
        warnings,
        ms: Date.now() - started,
      });
    }
    const stats = writer.finish({ compilerVersion: opts.compilerVersion });
    const diff = diffTables(stats.path, join(opts.dataDir, BLOCKLIST_PREV_FILE));
    for (const r of reports) {
      const before = previous.get(r.id);
      r.entriesDelta = before === undefined ? null : r.entries - before.entries;
      if (diff.counted && diff.bySource && before !== undefined) {
        const d = diff.bySource.get(r.id);
        r.added = d?.added ?? 0;
        r.removed = d?.removed ?? 0;
      }
    }
    return {
      ok: true,
      path: stats.path,
      written: true,
      sources: reports,
      totals: {
        entries: stats.entries,
        rules: stats.rules,
        duplicates: stats.duplicates,
        compressed: stats.compressed,
        patterns: stats.patterns,
        bytes: stats.bytes,
        added: diff.counted ? diff.added : null,
        removed: diff.counted ? diff.removed : null,
        diffSkipped: diff.why,
      },
      warnings,
      ms: Date.now() - started,
    };
  } catch (err) {
    writer?.abort();
    throw err;
  } finally {
    // Fresh downloads a failed compile never looked at stay out of the cache.
    for (const fr of fetched.values()) await fr.pending?.reject('the compile stopped before reading it').catch(() => {});
  }
}

/** List lines run 15-30 bytes (a hosts line about 25); the estimate only sizes the Bloom filter. */
const BYTES_PER_ENTRY = 20;

function estimateNames(opts: CompileOptions, fetched: Map<string, FetchResult>): number {
  let bytes = 0;
  for (const spec of opts.sources) {
    const path = spec.url ? fetched.get(spec.id)?.path : spec.path;
    try {
      if (path) bytes += statSync(path).size;
    } catch {
      // A list that cannot be read fails when it is parsed; it holds no names.
    }
  }
  return Math.ceil(bytes / BYTES_PER_ENTRY) + opts.allow.length + opts.deny.length;
}

async function fetchRemote(opts: CompileOptions): Promise<Map<string, FetchResult>> {
  const remote = opts.sources.filter((s) => s.url !== null).map((s) => ({ id: s.id, url: s.url! }));
  if (remote.length === 0) return new Map();
  // undici loads only when there is something to download.
  const { fetchAll } = await import('./fetch.js');
  const results = await fetchAll(
    remote,
    {
      cacheDir: join(opts.dataDir, 'cache'),
      timeoutMs: opts.fetch.timeoutMs,
      maxBytes: opts.fetch.maxBytes,
      concurrency: opts.fetch.concurrency,
      retries: opts.fetch.retries,
      retryBaseMs: opts.fetch.retryBaseMs,
      deferCommit: true,
    },
    (r) => opts.onProgress?.({ kind: 'fetched', id: r.id, status: r.status }),
  );
  return new Map(results.map((r) => [r.id, r]));
}

function sourceReport(spec: SourceSpec, counts: ListCounts, status: SourceRecord['status'], error: string | null): SourceReport {
  const { error: _e, valid: _v, ...rest } = counts;
  return { ...rest, id: spec.id, origin: spec.origin, url: spec.url ?? spec.path, status, added: null, removed: null, entriesDelta: null, error };
}

/** Why a fresh download must not replace the last good copy, or null when it may. */
function whyUnusable(counts: ListCounts, previous: PreviousSource | undefined): string | null {
  if (counts.error) return counts.error;
  if (counts.valid === 0) {
    const lines = Object.entries({ ...counts.invalidByReason, ...counts.unsupportedByReason })
      .map(([r, n]) => `${n} ${r}`)
      .join(', ');
    return `the new copy holds no valid ${counts.format} entries${lines ? ` (${lines})` : ''}: an error page or an empty file, not the list`;
  }
  if (previous && previous.valid >= COLLAPSE_MIN && counts.valid < previous.valid * COLLAPSE_SHARE) {
    return `the new copy holds ${counts.valid} valid entries where the last build read ${previous.valid}: less than ${COLLAPSE_SHARE * 100} %, more likely a broken download than the list`;
  }
  return null;
}

async function compileSource(
  writer: BlocklistWriter,
  spec: SourceSpec,
  fr: FetchResult | undefined,
  ctx: Omit<ListContext, 'writer' | 'sourceId' | 'spec'>,
  previous: PreviousSource | undefined,
): Promise<SourceReport> {
  let status: SourceRecord['status'] = spec.url ? (fr?.status ?? 'failed') : 'local';
  let error = fr?.error ?? null;
  let path = spec.url ? (fr?.path ?? null) : spec.path;
  const record: SourceRecord = {
    name: spec.id,
    url: spec.url ?? spec.path,
    format: spec.format,
    vendor: spec.vendor,
    category: spec.category,
    license: spec.license,
    status,
    fetchedAt: fr?.fetchedAt ?? null,
    etag: fr?.etag ?? null,
    lastModified: fr?.lastModified ?? null,
    sha256: fr?.sha256 ?? null,
    error,
  };
  const sourceId = writer.addSource(record);
  const list: ListContext = { ...ctx, writer, sourceId, spec };
  let counts = emptyCounts(spec.format);
  if (path !== null) {
    const pending = fr?.pending;
    const mark = pending ? writer.mark() : null;
    counts = await readList(path, list);
    if (pending && mark) {
      const problem = whyUnusable(counts, previous);
      if (problem === null) {
        writer.release(mark);
        await pending.accept();
        error = fr.error ?? null;
      } else {
        writer.rollbackTo(mark);
        writer.release(mark);
        const fallback = await pending.reject(problem);
        status = fallback.status;
        error = fallback.error ?? problem;
        path = fallback.path;
        Object.assign(record, { fetchedAt: fallback.fetchedAt ?? null, etag: fallback.etag ?? null, lastModified: fallback.lastModified ?? null, sha256: fallback.sha256 ?? null });
        counts = path === null ? emptyCounts(spec.format) : await readList(path, list);
      }
    }
    if (counts.error !== null) {
      status = 'failed';
      error = counts.error;
    }
  } else {
    status = 'failed';
  }
  const report = sourceReport(spec, counts, status, error);
  writer.updateSource(sourceId, {
    status,
    format: counts.format,
    entries: counts.entries,
    invalid: counts.invalid,
    unsupported: counts.unsupported,
    error,
    fetchedAt: record.fetchedAt,
    etag: record.etag,
    lastModified: record.lastModified,
    sha256: record.sha256,
    detail: {
      invalid: counts.invalidByReason,
      unsupported: counts.unsupportedByReason,
      excluded: counts.excluded,
      notIncluded: counts.notIncluded,
      canary: counts.canary,
      canaryPatterns: counts.canaryPatterns,
      patterns: counts.patterns,
      valid: counts.valid,
    },
  });
  return report;
}

/** The user's own allow/deny entries: strong claims that beat every list. */
function addUserEntries(writer: BlocklistWriter, opts: CompileOptions): void {
  if (opts.allow.length === 0 && opts.deny.length === 0) return;
  const id = writer.addSource({ name: 'user', status: 'local', category: 'user', entries: opts.allow.length + opts.deny.length });
  const add = (entry: string, action: 'allow' | 'block') => {
    const e = parseUserEntry(entry);
    if (!e.ok) throw new CompileError(`${action === 'allow' ? 'allow' : 'deny'} entry ${entry}: not a valid name (${e.reason})`, null);
    writer.addRule(e.name, action, e.scope, true, id, null);
  };
  for (const e of opts.allow) add(e, 'allow');
  for (const e of opts.deny) add(e, 'block');
}
