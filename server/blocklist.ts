// The server's read side of the compiled blocklist (common/schema.ts), and the only server module
// that touches it with SQL. A Blocklist is one opened table file: a Bloom filter in memory says
// which names cannot have a row, SQLite point lookups fetch the few that might, and a bounded LRU
// of decisions sits in front. A BlocklistHandle keeps the current Blocklist and swaps in a newly
// compiled file without dropping a query.
import { accessSync, constants as fsConstants, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import Database from 'better-sqlite3';
import { BloomFilter } from '../common/bloom.js';
import {
  Rank,
  allowRankBelow,
  allowRankSelf,
  blockRankBelow,
  blockRankSelf,
  decide as decideFromRows,
  decodeClaim,
  nameOfKey,
  treeKey,
  type ClaimRow,
  type ClaimScope,
} from '../common/decision.js';
import { UserError } from '../common/errors.js';
import { RecentMap } from '../common/recent-map.js';
import { Meta, SCHEMA_VERSION } from '../common/schema.js';

export type BlocklistErrorCode = 'missing' | 'unreadable' | 'wrong-schema' | 'corrupt';

export class BlocklistError extends UserError {
  readonly code: BlocklistErrorCode;
  readonly path: string;

  constructor(message: string, code: BlocklistErrorCode, path: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BlocklistError';
    this.code = code;
    this.path = path;
  }
}

export interface BlockDecision {
  action: 'block' | 'allow' | 'none';
  /** The name whose row decided (the queried name or a parent). */
  ruleName?: string;
  scope?: ClaimScope;
  strong?: boolean;
  vendor: string | null;
  /** Names of the sources behind the deciding rule or pattern. */
  sources: string[];
  /** Set when a pattern decided. */
  patternId?: number;
  /** One line for logs and answers: `||tracking.example.com^ (list-a, list-b)`. */
  reason: string;
}

export interface SourceInfo {
  id: number;
  name: string;
  url: string | null;
  format: string | null;
  vendor: string | null;
  category: string | null;
  license: string | null;
  status: string;
  fetchedAt: number | null;
  etag: string | null;
  lastModified: string | null;
  sha256: string | null;
  entries: number;
  invalid: number;
  unsupported: number;
  detail: unknown;
  error: string | null;
}

export type SourceSummary = Pick<SourceInfo, 'id' | 'name' | 'url' | 'vendor' | 'status' | 'format'>;

export interface PatternInfo {
  /** Id of the first row of this pattern (one row per source). */
  id: number;
  kind: 'regex' | 'glob';
  pattern: string;
  action: 'block' | 'allow';
  sources: SourceSummary[];
}

export interface ExplainClaim {
  action: 'block' | 'allow';
  scope: ClaimScope;
  /** Strong on the row's own name. */
  strong: boolean;
  /** Strong below the row's name (subtree claims only). */
  strongBelow: boolean;
  /** Whether this claim covers the queried name, and at which rank (0 when it does not). */
  covers: boolean;
  rank: number;
  sources: SourceSummary[];
}

export interface ExplainRow {
  name: string;
  /** True for the queried name's own row, false for a parent's. */
  self: boolean;
  vendor: string | null;
  claims: ExplainClaim[];
}

export interface Explanation {
  name: string;
  decision: BlockDecision;
  /** Every row for the name and its parents, most specific first, covering or not. */
  rows: ExplainRow[];
  /** Patterns that match the name. */
  patterns: PatternInfo[];
  table: { path: string; builtAt: number };
}

export interface BlocklistInfo {
  path: string;
  builtAt: number;
  compilerVersion: string | null;
  schemaVersion: number;
  rules: number;
  patterns: number;
  entries: number | null;
  duplicates: number | null;
  compressed: number | null;
  sources: SourceInfo[];
  bytes: number;
  /** Patterns that could not be compiled into a RegExp and are ignored. */
  invalidPatterns: { id: number; pattern: string; error: string }[];
  /** Lookups that failed inside SQLite (a damaged file); those names were treated as unlisted. */
  lookupErrors: number;
  cache: { size: number; max: number };
}

export interface BlocklistOptions {
  /** Decisions kept in the LRU cache (0 disables it). Default 100 000. */
  cacheSize?: number;
}

interface Row extends ClaimRow {
  vendor: string | null;
  blockSources: string | null;
  allowSources: string | null;
}

interface CompiledPattern {
  id: number;
  kind: 'regex' | 'glob';
  pattern: string;
  action: 'block' | 'allow';
  re: RegExp;
  sourceIds: number[];
}

const NONE: BlockDecision = Object.freeze({ action: 'none', vendor: null, sources: Object.freeze([]) as unknown as string[], reason: 'not listed' });
const DEFAULT_CACHE = 100_000;
const READ_CACHE_KIB = 16 * 1024;

export class Blocklist {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly bloom: BloomFilter;
  private readonly lookupStmt: Database.Statement;
  private readonly sourcesById: Map<number, SourceInfo>;
  private readonly blockPatterns: CompiledPattern[];
  private readonly allowPatterns: CompiledPattern[];
  private readonly invalidPatterns: { id: number; pattern: string; error: string }[];
  private readonly meta: Map<string, string>;
  private readonly bytes: number;
  private readonly cache: RecentMap<string, BlockDecision>;
  private readonly lookupRow: (candidate: string, offset: number) => Row | undefined;
  private currentKey = '';
  private currentNameLength = 0;
  private lookupErrors = 0;
  private closed = false;

  private constructor(path: string, db: Database.Database, opts: BlocklistOptions) {
    this.path = path;
    this.db = db;
    this.cache = new RecentMap(Math.max(0, opts.cacheSize ?? DEFAULT_CACHE));
    this.meta = new Map((db.prepare('SELECT key, value FROM meta').raw().all() as [string, string][]).map(([k, v]) => [k, v]));
    const metaVersion = Number(this.meta.get(Meta.SchemaVersion));
    if (metaVersion !== SCHEMA_VERSION) {
      throw new BlocklistError(`${path} says schema version ${this.meta.get(Meta.SchemaVersion) ?? '(none)'} in its meta table; this hushdns reads version ${SCHEMA_VERSION}. Run \`hushdns compile\`.`, 'wrong-schema', path);
    }
    const bloomRow = db.prepare('SELECT bits, hashes FROM bloom WHERE id = 1').get() as { bits: Buffer; hashes: number } | undefined;
    if (!bloomRow || !(bloomRow.bits instanceof Uint8Array) || bloomRow.bits.length === 0) throw new BlocklistError(`${path} has no Bloom filter; the file is incomplete`, 'corrupt', path);
    this.bloom = new BloomFilter(new Uint8Array(bloomRow.bits), bloomRow.hashes);
    this.sourcesById = new Map((db.prepare('SELECT * FROM source ORDER BY id').all() as SourceRow[]).map((r) => [r.id, sourceInfo(r)]));
    const compiled = compilePatterns(db.prepare('SELECT id, kind, pattern, action, source_id FROM pattern ORDER BY id').raw().all() as PatternRowRaw[]);
    this.blockPatterns = compiled.block;
    this.allowPatterns = compiled.allow;
    this.invalidPatterns = compiled.invalid;
    this.lookupStmt = db.prepare('SELECT block, allow, vendor, block_sources, allow_sources FROM rule WHERE key = ?').raw();
    this.bytes = statSync(path).size;

    // One closure for the life of the table: decide() asks it for the name and each parent. A
    // parent's key is a prefix of the name's key, so no key is built twice and most candidates
    // end at the Bloom filter.
    this.lookupRow = (_candidate: string, offset: number): Row | undefined => {
      const key = offset === 0 ? this.currentKey : this.currentKey.slice(0, this.currentNameLength - offset);
      if (!this.bloom.mayContain(key)) return undefined;
      let raw: [number, number, string | null, string | null, string | null] | undefined;
      try {
        raw = this.lookupStmt.get(key) as typeof raw;
      } catch (err) {
        if (this.closed) throw err;
        this.lookupErrors++;
        return undefined;
      }
      if (raw === undefined) return undefined;
      return { block: raw[0], allow: raw[1], vendor: raw[2], blockSources: raw[3], allowSources: raw[4] };
    };
  }

  /**
   * Opens a compiled table read-only and checks that this server can read it. Loads the Bloom
   * filter, sources and patterns into memory. Throws BlocklistError: missing, unreadable,
   * wrong-schema or corrupt.
   */
  static open(path: string, opts: BlocklistOptions = {}): Blocklist {
    let size: number;
    try {
      const st = statSync(path);
      if (!st.isFile()) throw new BlocklistError(`${path} is not a file`, 'unreadable', path);
      size = st.size;
      accessSync(path, fsConstants.R_OK);
    } catch (err) {
      if (err instanceof BlocklistError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new BlocklistError(`no compiled table at ${path}; run \`hushdns compile\` first`, 'missing', path, { cause: err });
      throw new BlocklistError(`cannot read ${path}: ${(err as Error).message}`, 'unreadable', path, { cause: err });
    }
    let db: Database.Database | null = null;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
      // Keep the shared lock between statements: a compiled file is never changed in place (the
      // compiler renames a new one over it), so the per-lookup lock, unlock and change check that
      // SQLite does by default buy nothing and cost several system calls per lookup.
      db.pragma('locking_mode = EXCLUSIVE');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version !== SCHEMA_VERSION) {
        throw new BlocklistError(`${path} has schema version ${version}; this hushdns reads version ${SCHEMA_VERSION}. Run \`hushdns compile\` to rebuild it.`, 'wrong-schema', path);
      }
      // A file cut short (copied half-way, disk full) keeps a valid header; its length gives it away.
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      const pageCount = db.pragma('page_count', { simple: true }) as number;
      if (pageSize * pageCount !== size) throw new BlocklistError(`${path} is ${size} bytes but its header describes ${pageSize * pageCount}; the file is damaged`, 'corrupt', path);
      db.pragma(`cache_size = -${READ_CACHE_KIB}`);
      return new Blocklist(path, db, opts);
    } catch (err) {
      db?.close();
      throw asBlocklistError(err, path);
    }
  }

  /** The decision for a name (lowercase, no trailing dot). Hot path. */
  decide(name: string): BlockDecision {
    const hit = this.cache.get(name);
    if (hit !== undefined) return hit;
    const d = this.compute(name);
    this.cache.set(name, d);
    return d;
  }

  /** Every row and pattern behind the decision for `name`, for `hushdns why`. */
  explain(name: string): Explanation {
    this.assertOpen();
    const rows: ExplainRow[] = [];
    const key = treeKey(name);
    let offset = 0;
    for (;;) {
      const candidate = offset === 0 ? name : name.slice(offset);
      const raw = this.lookupStmt.get(offset === 0 ? key : key.slice(0, name.length - offset)) as [number, number, string | null, string | null, string | null] | undefined;
      if (raw) {
        const self = offset === 0;
        const claims: ExplainClaim[] = [];
        const [block, allow, vendor, blockSources, allowSources] = raw;
        if (block !== 0) claims.push(this.explainClaim('block', block, self, blockSources));
        if (allow !== 0) claims.push(this.explainClaim('allow', allow, self, allowSources));
        rows.push({ name: candidate, self, vendor, claims });
      }
      const dot = name.indexOf('.', offset);
      if (dot === -1) break;
      offset = dot + 1;
    }
    const patterns: PatternInfo[] = [];
    for (const p of [...this.allowPatterns, ...this.blockPatterns]) {
      if (p.re.test(name)) patterns.push({ id: p.id, kind: p.kind, pattern: p.pattern, action: p.action, sources: p.sourceIds.map((id) => this.summary(id)) });
    }
    return { name, decision: this.compute(name), rows, patterns, table: { path: this.path, builtAt: Number(this.meta.get(Meta.BuiltAt) ?? 0) } };
  }

  info(): BlocklistInfo {
    const num = (k: string): number | null => (this.meta.has(k) ? Number(this.meta.get(k)) : null);
    return {
      path: this.path,
      builtAt: num(Meta.BuiltAt) ?? 0,
      compilerVersion: this.meta.get(Meta.CompilerVersion) ?? null,
      schemaVersion: SCHEMA_VERSION,
      rules: num(Meta.Rules) ?? 0,
      patterns: num(Meta.Patterns) ?? 0,
      entries: num(Meta.Entries),
      duplicates: num(Meta.Duplicates),
      compressed: num(Meta.Compressed),
      sources: [...this.sourcesById.values()],
      bytes: this.bytes,
      invalidPatterns: this.invalidPatterns,
      lookupErrors: this.lookupErrors,
      cache: { size: this.cache.size, max: this.cache.max },
    };
  }

  /**
   * Every rule row in key order (a parent directly before its descendants), for export. Streams
   * from SQLite; `name` is the dotted name.
   */
  *ruleRows(): Generator<{ name: string; key: string; block: number; allow: number; vendor: string | null }> {
    this.assertOpen();
    const stmt = this.db.prepare('SELECT key, block, allow, vendor FROM rule ORDER BY key').raw();
    for (const [key, block, allow, vendor] of stmt.iterate() as IterableIterator<[string, number, number, string | null]>) {
      yield { name: nameOfKey(key), key, block, allow, vendor };
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`the blocklist ${this.path} was closed`);
  }

  private compute(name: string): BlockDecision {
    this.assertOpen();
    if (name.length === 0) return NONE;
    this.currentKey = treeKey(name);
    this.currentNameLength = name.length;
    const d = decideFromRows(name, this.lookupRow);
    // Patterns only count where they could change the outcome: nothing listed (either action), or
    // a plain block that an allow pattern would beat. Strong claims and allows are final.
    if (d.rank <= Rank.Block) {
      const allowed = firstMatch(this.allowPatterns, name);
      if (allowed) return this.patternDecision(allowed);
      if (d.rank === Rank.None) {
        const blocked = firstMatch(this.blockPatterns, name);
        if (blocked) return this.patternDecision(blocked);
      }
    }
    if (d.matched === undefined) return NONE;
    const m = d.matched;
    const row = m.row;
    const action = d.action as 'block' | 'allow';
    const sourceIds = parseIds(action === 'block' ? row.blockSources : row.allowSources);
    const sources = sourceIds.map((id) => this.sourcesById.get(id)?.name ?? `source#${id}`);
    const vendor = row.vendor ?? this.firstSourceVendor(sourceIds);
    return {
      action,
      ruleName: m.name,
      scope: m.scope,
      strong: m.strong,
      vendor,
      sources,
      reason: `${ruleText(action, m.name, m.scope, m.strong)} (${sources.join(', ')})`,
    };
  }

  private patternDecision(p: CompiledPattern): BlockDecision {
    const sources = p.sourceIds.map((id) => this.sourcesById.get(id)?.name ?? `source#${id}`);
    const text = p.kind === 'regex' ? `/${p.pattern}/` : p.pattern;
    return {
      action: p.action,
      vendor: this.firstSourceVendor(p.sourceIds),
      sources,
      patternId: p.id,
      reason: `${p.action === 'allow' ? '@@' : ''}${text} (${sources.join(', ')})`,
    };
  }

  private firstSourceVendor(ids: number[]): string | null {
    for (const id of ids) {
      const v = this.sourcesById.get(id)?.vendor;
      if (v) return v;
    }
    return null;
  }

  private explainClaim(action: 'block' | 'allow', v: number, self: boolean, sourceList: string | null): ExplainClaim {
    const c = decodeClaim(v)!;
    const rank = action === 'block' ? (self ? blockRankSelf(v) : blockRankBelow(v)) : self ? allowRankSelf(v) : allowRankBelow(v);
    return { action, scope: c.scope, strong: c.strong, strongBelow: c.strongBelow, covers: rank > 0, rank, sources: parseIds(sourceList).map((id) => this.summary(id)) };
  }

  private summary(id: number): SourceSummary {
    const s = this.sourcesById.get(id);
    return s
      ? { id, name: s.name, url: s.url, vendor: s.vendor, status: s.status, format: s.format }
      : { id, name: `source#${id}`, url: null, vendor: null, status: 'unknown', format: null };
  }
}

export interface BlocklistHandleOptions extends BlocklistOptions {
  /** Notice a new file at `path` by itself (fs.watch on the folder plus a stat poll). */
  watch?: boolean;
  onSwap?: (info: BlocklistInfo) => void;
  onError?: (err: BlocklistError) => void;
  /** How long a replaced table stays open for callers that still hold it. Default 5 s. */
  closeDelayMs?: number;
  /** Stat poll interval when watching. Default 2 s. */
  pollMs?: number;
}

/** The table queries use right now, swapped for a newly compiled one without dropping a query. */
export class BlocklistHandle {
  readonly path: string;
  private bl: Blocklist | null = null;
  private loadedSig: string | null = null;
  private refusedSig: string | null = null;
  private readonly retiring = new Set<{ bl: Blocklist; timer: NodeJS.Timeout }>();
  private watcher: FSWatcher | null = null;
  private poll: NodeJS.Timeout | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    path: string,
    private readonly opts: BlocklistHandleOptions = {},
  ) {
    this.path = path;
    // A missing table at start is normal (nothing compiled yet); the server says so itself.
    this.load(false);
    if (opts.watch) this.startWatching();
  }

  current(): Blocklist | null {
    return this.bl;
  }

  /**
   * Opens the file at `path` again. If it opens and validates, queries move to it and the old
   * table is closed a little later; otherwise the old one keeps serving, onError is told, and the
   * result is false.
   */
  reload(): boolean {
    if (this.closed) return false;
    return this.load(true);
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = null;
    if (this.poll) clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
    for (const r of this.retiring) {
      clearTimeout(r.timer);
      r.bl.close();
    }
    this.retiring.clear();
    this.bl?.close();
    this.bl = null;
  }

  private load(reportMissing: boolean): boolean {
    const sig = fileSignature(this.path);
    let next: Blocklist;
    try {
      next = Blocklist.open(this.path, this.opts);
    } catch (err) {
      const e = asBlocklistError(err, this.path);
      this.refusedSig = sig;
      if (reportMissing || e.code !== 'missing') this.opts.onError?.(e);
      return false;
    }
    const old = this.bl;
    this.bl = next;
    this.loadedSig = sig;
    this.refusedSig = null;
    if (old) this.retire(old);
    if (old || reportMissing) this.opts.onSwap?.(next.info());
    return true;
  }

  /** decide() is synchronous, but a caller may hold the old table across an await: close it later. */
  private retire(old: Blocklist): void {
    const entry = {
      bl: old,
      timer: setTimeout(() => {
        this.retiring.delete(entry);
        old.close();
      }, this.opts.closeDelayMs ?? 5000),
    };
    entry.timer.unref();
    this.retiring.add(entry);
  }

  private startWatching(): void {
    const file = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, filename) => {
        if (filename === null || filename === file || filename.startsWith(`${file}.`)) this.scheduleCheck();
      });
      this.watcher.on('error', () => {
        // The poll below keeps working when the folder cannot be watched (or goes away).
        this.watcher?.close();
        this.watcher = null;
      });
    } catch {
      this.watcher = null;
    }
    this.poll = setInterval(() => this.checkForChange(), this.opts.pollMs ?? 2000);
    this.poll.unref();
  }

  private scheduleCheck(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      this.checkForChange();
    }, 200);
    this.debounce.unref();
  }

  private checkForChange(): void {
    if (this.closed) return;
    const sig = fileSignature(this.path);
    // Gone: keep serving what we have. Unchanged, or already refused as it is: nothing to do.
    if (sig === null || sig === this.loadedSig || sig === this.refusedSig) return;
    this.load(true);
  }
}

/** Identity of the file at `path` as a rename-swap changes it: inode, mtime, size. */
function fileSignature(path: string): string | null {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.mtimeMs}:${st.size}`;
  } catch {
    return null;
  }
}

function asBlocklistError(err: unknown, path: string): BlocklistError {
  if (err instanceof BlocklistError) return err;
  const code = (err as { code?: unknown }).code;
  const message = (err as Error).message ?? String(err);
  if (typeof code === 'string') {
    if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH' || code === 'EACCES' || code === 'EPERM') {
      return new BlocklistError(`cannot read ${path}: ${message}`, 'unreadable', path, { cause: err });
    }
    if (code === 'ENOENT') return new BlocklistError(`no compiled table at ${path}`, 'missing', path, { cause: err });
  }
  // SQLITE_NOTADB, SQLITE_CORRUPT*, missing tables or columns: not a table this server can use.
  return new BlocklistError(`${path} is not a usable hushdns table: ${message}`, 'corrupt', path, { cause: err });
}

interface SourceRow {
  id: number;
  name: string;
  url: string | null;
  format: string | null;
  vendor: string | null;
  category: string | null;
  license: string | null;
  status: string;
  fetched_at: number | null;
  etag: string | null;
  last_modified: string | null;
  sha256: string | null;
  entries: number;
  invalid: number;
  unsupported: number;
  detail: string | null;
  error: string | null;
}

function sourceInfo(r: SourceRow): SourceInfo {
  let detail: unknown = null;
  if (r.detail !== null) {
    try {
      detail = JSON.parse(r.detail);
    } catch {
      detail = r.detail;
    }
  }
  return {
    id: r.id,
    name: r.name,
    url: r.url,
    format: r.format,
    vendor: r.vendor,
    category: r.category,
    license: r.license,
    status: r.status,
    fetchedAt: r.fetched_at,
    etag: r.etag,
    lastModified: r.last_modified,
    sha256: r.sha256,
    entries: r.entries,
    invalid: r.invalid,
    unsupported: r.unsupported,
    detail,
    error: r.error,
  };
}

type PatternRowRaw = [number, string, string, number, number];

/** Patterns grouped by (kind, pattern, action) with all their sources; regexes compiled once. */
function compilePatterns(rows: PatternRowRaw[]): { block: CompiledPattern[]; allow: CompiledPattern[]; invalid: { id: number; pattern: string; error: string }[] } {
  const byText = new Map<string, CompiledPattern>();
  const invalid: { id: number; pattern: string; error: string }[] = [];
  for (const [id, kind, pattern, actionCode, sourceId] of rows) {
    const action = actionCode === 1 ? 'allow' : 'block';
    const k = `${kind}\u0000${action}\u0000${pattern}`;
    const known = byText.get(k);
    if (known) {
      known.sourceIds.push(sourceId);
      continue;
    }
    if (kind !== 'regex' && kind !== 'glob') {
      invalid.push({ id, pattern, error: `unknown pattern kind ${kind}` });
      continue;
    }
    let re: RegExp;
    try {
      re = kind === 'regex' ? new RegExp(pattern, 'i') : globToRegExp(pattern);
    } catch (err) {
      invalid.push({ id, pattern, error: (err as Error).message });
      continue;
    }
    byText.set(k, { id, kind, pattern, action, re, sourceIds: [sourceId] });
  }
  const all = [...byText.values()];
  return { block: all.filter((p) => p.action === 'block'), allow: all.filter((p) => p.action === 'allow'), invalid };
}

/**
 * Globs as the parsers emit them (compiler/parse/common.ts): matched against the whole name, `*`
 * stands for any run of characters, dots included; a leading `*.` means the rest of the pattern
 * and every name below it (`*.ads*.example.net` covers `ads1.example.net` and `x.ads1.example.net`).
 */
export function globToRegExp(glob: string): RegExp {
  const lower = glob.toLowerCase();
  const subtree = lower.startsWith('*.');
  const body = (subtree ? lower.slice(2) : lower)
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(subtree ? `^(?:.*\\.)?${body}$` : `^${body}$`);
}

function firstMatch(patterns: CompiledPattern[], name: string): CompiledPattern | undefined {
  for (let i = 0; i < patterns.length; i++) if (patterns[i].re.test(name)) return patterns[i];
  return undefined;
}

function parseIds(list: string | null): number[] {
  if (list === null || list === '') return [];
  if (list.indexOf(',') === -1) return [Number(list)];
  return list.split(',').map(Number);
}

/** A claim written the way lists write it: `||name^` covers the subtree, `@@` allows. */
function ruleText(action: 'block' | 'allow', name: string, scope: ClaimScope, strong: boolean): string {
  return `${action === 'allow' ? '@@' : ''}${scope === 'subtree' ? `||${name}^` : name}${strong ? '$important' : ''}`;
}
