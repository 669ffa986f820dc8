// One compile: sources → fetch → parse (per format) → normalise → exclusions → canary guard →
// writer (dedupe, compress, bloom, atomic swap) → report. Lists are streamed line by line; only the
// writer's bounded SQLite staging holds entries, so memory does not grow with list size.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { normaliseName, type InvalidNameReason } from '../common/names.js';
import { isSpecialName } from '../common/special-names.js';
import { VendorCatalog } from '../common/vendors.js';
import { BLOCKLIST_FILE } from '../common/schema.js';
import { fetchAll, type FetchResult } from './fetch.js';
import { splitLines, splitLinesSync, TOO_LONG_LINE } from './lines.js';
import { detectFormat, parserFor } from './parse/index.js';
import { allowListParser, curatedParser } from './parse/curated.js';
import type { SourceSpec, SourceFormat } from './sources.js';
import { compileExclusions, type NameMatcher } from './transforms/exclusions.js';
import type { LineParser, ParsedLine } from './types.js';
import { BlocklistWriter, type SourceRecord } from './write-db.js';

export interface CompileOptions {
  dataDir: string;
  sources: SourceSpec[];
  level: 'standard' | 'strict';
  /** Global exclusions (config `exclude`). */
  exclude: string[];
  /** The user's own entries: `name` covers the subtree, `=name` only the name. They beat every list. */
  allow: string[];
  deny: string[];
  fetch: { timeoutMs: number; maxBytes: number; concurrency: number; retries?: number; retryBaseMs?: number };
  compilerVersion: string;
  /** Defaults to lists/vendors.json. */
  catalog?: VendorCatalog;
  onProgress?: (event: ProgressEvent) => void;
}

export type ProgressEvent =
  | { kind: 'fetched'; id: string; status: FetchResult['status'] }
  | { kind: 'parsed'; id: string; entries: number; invalid: number };

export interface SourceReport {
  id: string;
  origin: SourceSpec['origin'];
  url: string | null;
  format: string | null;
  status: SourceRecord['status'];
  entries: number;
  patterns: number;
  invalid: number;
  invalidByReason: Record<string, number>;
  unsupported: number;
  unsupportedByReason: Record<string, number>;
  excluded: number;
  /** Special names (DoH canary, Private Relay) the list tried to block; never written. */
  canary: string[];
  /** entries minus the same source's entries in the previous build (null: not in the previous build). */
  entriesDelta: number | null;
  error: string | null;
}

export interface CompileReport {
  ok: boolean;
  path: string;
  sources: SourceReport[];
  totals: { entries: number; rules: number; duplicates: number; compressed: number; patterns: number; bytes: number; added: number | null; removed: number | null };
  warnings: string[];
  ms: number;
}

export class CompileError extends Error {
  readonly code = 'compile-failed';
  constructor(
    message: string,
    readonly report: Omit<CompileReport, 'ok'> | null,
  ) {
    super(message);
  }
}

export async function compile(opts: CompileOptions): Promise<CompileReport> {
  const started = Date.now();
  const globalExclude = compileExclusions(opts.exclude, 'exclude');
  const catalog = opts.catalog ?? VendorCatalog.load();
  const fetched = await fetchRemote(opts);
  const writer = BlocklistWriter.create(opts.dataDir);
  const reports: SourceReport[] = [];
  const warnings: string[] = [];
  try {
    for (const spec of opts.sources) {
      const fr = spec.url ? fetched.get(spec.id) : undefined;
      const report = await compileSource(writer, spec, fr, opts, globalExclude, catalog);
      reports.push(report);
      opts.onProgress?.({ kind: 'parsed', id: spec.id, entries: report.entries, invalid: report.invalid });
      if (report.canary.length > 0) {
        warnings.push(`${spec.id} lists ${report.canary.join(', ')}; not written (hushdns answers these itself; a sinkhole answer would switch browsers to their own DoH)`);
      }
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
        path: join(opts.dataDir, BLOCKLIST_FILE),
        sources: reports,
        totals: { entries: 0, rules: 0, duplicates: 0, compressed: 0, patterns: 0, bytes: 0, added: null, removed: null },
        warnings,
        ms: Date.now() - started,
      });
    }
    const stats = writer.finish({ compilerVersion: opts.compilerVersion });
    const previous = writer.previousSourceEntries?.() ?? new Map<string, number>();
    for (const r of reports) {
      const before = previous.get(r.id);
      r.entriesDelta = before === undefined ? null : r.entries - before;
    }
    const diff = writer.lastDiff?.() ?? { added: null, removed: null };
    return {
      ok: true,
      path: stats.path,
      sources: reports,
      totals: {
        entries: stats.entries,
        rules: stats.rules,
        duplicates: stats.duplicates,
        compressed: stats.compressed,
        patterns: stats.patterns,
        bytes: stats.bytes,
        added: diff.added,
        removed: diff.removed,
      },
      warnings,
      ms: Date.now() - started,
    };
  } catch (err) {
    writer.abort();
    throw err;
  }
}

async function fetchRemote(opts: CompileOptions): Promise<Map<string, FetchResult>> {
  const remote = opts.sources.filter((s) => s.url !== null).map((s) => ({ id: s.id, url: s.url! }));
  const results = await fetchAll(
    remote,
    {
      cacheDir: join(opts.dataDir, 'cache'),
      timeoutMs: opts.fetch.timeoutMs,
      maxBytes: opts.fetch.maxBytes,
      concurrency: opts.fetch.concurrency,
      retries: opts.fetch.retries,
      retryBaseMs: opts.fetch.retryBaseMs,
    },
    (r) => opts.onProgress?.({ kind: 'fetched', id: r.id, status: r.status }),
  );
  return new Map(results.map((r) => [r.id, r]));
}

function emptyReport(spec: SourceSpec): SourceReport {
  return {
    id: spec.id,
    origin: spec.origin,
    url: spec.url ?? spec.path,
    format: spec.format,
    status: spec.url ? 'failed' : 'local',
    entries: 0,
    patterns: 0,
    invalid: 0,
    invalidByReason: {},
    unsupported: 0,
    unsupportedByReason: {},
    excluded: 0,
    canary: [],
    entriesDelta: null,
    error: null,
  };
}

async function compileSource(
  writer: BlocklistWriter,
  spec: SourceSpec,
  fr: FetchResult | undefined,
  opts: CompileOptions,
  globalExclude: NameMatcher | null,
  catalog: VendorCatalog,
): Promise<SourceReport> {
  const report = emptyReport(spec);
  const path = spec.url ? (fr?.path ?? null) : spec.path;
  if (fr) {
    report.status = fr.status;
    report.error = fr.error ?? null;
  }
  const record: SourceRecord = {
    name: spec.id,
    url: spec.url ?? spec.path,
    format: spec.format,
    vendor: spec.vendor,
    category: spec.category,
    license: spec.license,
    status: report.status,
    fetchedAt: fr?.fetchedAt ?? null,
    etag: fr?.etag ?? null,
    lastModified: fr?.lastModified ?? null,
    sha256: fr?.sha256 ?? null,
    error: report.error,
  };
  if (!path) {
    report.status = 'failed';
    writer.addSource({ ...record, status: 'failed' });
    return report;
  }

  let format: SourceFormat | null = spec.format;
  if (format === null) {
    format = detectFormat(await sampleLines(path));
    if (format === null) {
      report.status = 'failed';
      report.error = `cannot tell the format of ${spec.url ?? spec.path}; declare it, e.g. --source ${spec.url ?? spec.path}#hosts`;
      writer.addSource({ ...record, status: 'failed', error: report.error });
      return report;
    }
  }
  report.format = format;
  const sourceId = writer.addSource({ ...record, format });
  const parse: LineParser =
    format === 'curated' ? curatedParser(opts.level) : format === 'allowlist' ? allowListParser() : parserFor(format);
  const exclude = compileExclusions(spec.exclude, `source ${spec.id}`);
  const scopeOverride = spec.match;
  const actionOverride = spec.action;
  const vendor = spec.vendor;

  const consume = (item: ParsedLine): void => {
    switch (item.kind) {
      case 'skip':
        return;
      case 'invalid':
        report.invalid++;
        report.invalidByReason[item.reason] = (report.invalidByReason[item.reason] ?? 0) + 1;
        return;
      case 'unsupported':
        report.unsupported++;
        report.unsupportedByReason[item.reason] = (report.unsupportedByReason[item.reason] ?? 0) + 1;
        return;
      case 'pattern':
        writer.addPattern(item.patternKind, item.pattern, actionOverride ?? item.action, sourceId);
        report.patterns++;
        return;
      case 'rule': {
        const n = normaliseName(item.name);
        if (!n.ok) {
          countInvalid(report, n.reason);
          return;
        }
        const name = n.name;
        if (isSpecialName(name)) {
          if (!report.canary.includes(name)) report.canary.push(name);
          return;
        }
        if ((exclude && exclude(name)) || (globalExclude && globalExclude(name))) {
          report.excluded++;
          return;
        }
        const scope = scopeOverride === 'subtree' && item.scope === 'exact' ? 'subtree' : item.scope;
        writer.addRule(name, actionOverride ?? item.action, scope, item.important === true, sourceId, vendor ?? catalog.vendorOf(name)?.id ?? null);
        report.entries++;
      }
    }
  };

  try {
    for await (const line of splitLines(createReadStream(path))) {
      if (line === TOO_LONG_LINE) {
        countInvalid(report, 'line-too-long');
        continue;
      }
      const parsed = parse(line);
      if (Array.isArray(parsed)) for (const p of parsed) consume(p);
      else consume(parsed);
    }
  } catch (err) {
    report.status = 'failed';
    report.error = `reading ${path}: ${(err as Error).message}`;
  }
  writer.updateSource(sourceId, {
    status: report.status,
    entries: report.entries,
    invalid: report.invalid,
    unsupported: report.unsupported,
    error: report.error,
    detail: { invalid: report.invalidByReason, unsupported: report.unsupportedByReason, excluded: report.excluded, canary: report.canary, patterns: report.patterns },
  });
  return report;
}

function countInvalid(report: SourceReport, reason: InvalidNameReason | string): void {
  report.invalid++;
  report.invalidByReason[reason] = (report.invalidByReason[reason] ?? 0) + 1;
}

async function sampleLines(path: string): Promise<string[]> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return splitLinesSync(buf.subarray(0, bytesRead).toString('utf8')).filter((l) => l.trim() !== '').slice(0, 200);
  } finally {
    await fh.close();
  }
}

/** The user's own allow/deny entries: strong claims that beat every list. */
function addUserEntries(writer: BlocklistWriter, opts: CompileOptions): void {
  if (opts.allow.length === 0 && opts.deny.length === 0) return;
  const id = writer.addSource({ name: 'user', status: 'local', category: 'user', entries: opts.allow.length + opts.deny.length });
  const add = (entry: string, action: 'allow' | 'block') => {
    const exact = entry.startsWith('=');
    const n = normaliseName(exact ? entry.slice(1) : entry);
    if (!n.ok) throw new CompileError(`${action === 'allow' ? 'allow' : 'deny'} entry ${entry}: not a valid name (${n.reason})`, null);
    writer.addRule(n.name, action, exact ? 'exact' : 'subtree', true, id, null);
  };
  for (const e of opts.allow) add(e, 'allow');
  for (const e of opts.deny) add(e, 'block');
}
