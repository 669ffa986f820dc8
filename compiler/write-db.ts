// Writes the compiled blocklist (common/schema.ts) and swaps it in atomically.
//
// Entries are appended to a staging SQLite file as (tree key, packed claim) rows (stage.ts; on a
// thread of its own for big inputs): no index, no per-name state in JS, so memory does not grow
// with the lists (the Bloom filter, fixed in size, is fed as they arrive). finish() sorts them
// once inside SQLite (bounded memory, spilling to temp files), and one streaming pass in tree
// order merges each name's claims, drops claims an ancestor already decides (compress) and
// appends the survivors, already in key order, to a fresh table file. The live file is replaced
// by rename only after that file is complete and on disk, so a crash at any point leaves either
// the old or the new table in place.
import { closeSync, copyFileSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BLOOM_HASHES, BloomFilter } from '../common/bloom.js';
import { AncestorStack, allowRankSelf, blockRankSelf, mergeClaims } from '../common/decision.js';
import { BLOCKLIST_FILE, BLOCKLIST_PREV_FILE, Meta, SCHEMA_SQL, SCHEMA_VERSION, STRONG, Scope } from '../common/schema.js';
import { StageTable, ThreadStager, createStageFile, openStageFile, stageWorkerFile, type Stager } from './stage.js';

export interface SourceRecord {
  name: string;
  url?: string | null;
  format?: string | null;
  vendor?: string | null;
  category?: string | null;
  license?: string | null;
  status: 'fresh' | 'not-modified' | 'stale' | 'failed' | 'local';
  fetchedAt?: number | null;
  etag?: string | null;
  lastModified?: string | null;
  sha256?: string | null;
  entries?: number;
  invalid?: number;
  unsupported?: number;
  detail?: unknown;
  error?: string | null;
}

export interface WriteStats {
  /** addRule calls. */
  entries: number;
  /** Rows in the written table. */
  rules: number;
  /** Entries for a name that an earlier entry had already named. */
  duplicates: number;
  /** Names not written because ancestors' subtree claims already decide the same for them and below. */
  compressed: number;
  patterns: number;
  bytes: number;
  ms: number;
  path: string;
}

/** A point in the staging to roll back to (BlocklistWriter.mark). */
export interface WriterMark {
  readonly name: string;
  readonly entries: number;
}

export type FinishPhase = 'sources' | 'rules' | 'bloom' | 'sync' | 'swap' | 'done';

export interface FinishOptions {
  compilerVersion: string;
  extra?: Record<string, string>;
  /** Told as each phase starts (progress display; the crash tests use it to time a kill). */
  onPhase?: (phase: FinishPhase) => void;
}

// Packed staging claim: bits 0-3 the claim (bit 3 = allow, bits 0-2 scope and STRONG), then 16 bits
// of vendor id (0 = none), then the source id. Sorting rows of one name by this number orders them
// by source id, which makes source lists come out sorted and "first vendor" mean lowest source id.
const CLAIM_BITS = 16;
const VENDOR_SPAN = 65536;
const ALLOW_BIT = 8;
const MAX_VENDORS = VENDOR_SPAN - 1;

/** Staging Bloom filter without a size hint: 2^23 bits (1 MiB), room for ~800,000 names. */
const DEFAULT_STAGE_BLOOM_BITS = 2 ** 23;
/** Largest staging Bloom filter (32 MiB); more names than it holds are hashed again at finish. */
const MAX_STAGE_BLOOM_BITS = 2 ** 28;
/**
 * Expected names from which staging gets a thread of its own: below it, starting the thread
 * (~50 ms) costs more than it saves.
 */
const THREAD_FROM_NAMES = 100_000;
const FINAL_CACHE_KIB = 8 * 1024;

/** Temp files of writers that are running in this process, which stale-file cleanup must spare. */
const activeTempFiles = new Set<string>();

export class BlocklistWriter {
  private readonly sources: (SourceRecord & { id: number })[] = [];
  private readonly vendorIds = new Map<string, number>();
  private readonly vendorNames: (string | null)[] = [null];
  private entries = 0;
  private state: 'open' | 'finished' | 'aborted' = 'open';
  /** Whether any subtree claim was staged: without one, compress has nothing to drop. */
  private subtreeClaims = false;
  private marks = 0;
  /** The staging connection of finish(), once staging is complete. */
  private stage: Database.Database | null = null;

  private constructor(
    readonly dataDir: string,
    /** The table being written; renamed onto `livePath` by finish(). */
    readonly tmpPath: string,
    private readonly stagePath: string,
    private readonly stager: Stager,
  ) {}

  /** Whether entries are staged on a thread of their own (stage.ts). */
  get threaded(): boolean {
    return this.stager.threaded;
  }

  get livePath(): string {
    return join(this.dataDir, BLOCKLIST_FILE);
  }

  /**
   * Starts a table in `dataDir` (created if missing). Writes `blocklist.sqlite.<pid>.tmp` and a
   * staging file beside it; the live table is not touched until finish(). Removes temp files that
   * killed runs left behind. `expectedNames` (an estimate is fine) sizes the Bloom filter.
   */
  static create(dataDir: string, opts: { tmpSuffix?: string; expectedNames?: number; staging?: 'auto' | 'inline' | 'thread' } = {}): BlocklistWriter {
    mkdirSync(dataDir, { recursive: true });
    removeStaleTempFiles(dataDir);
    const base = `${BLOCKLIST_FILE}.${process.pid}${opts.tmpSuffix ? `.${opts.tmpSuffix}` : ''}`;
    const tmpPath = join(dataDir, `${base}.tmp`);
    const stagePath = join(dataDir, `${base}.stage.tmp`);
    if (activeTempFiles.has(tmpPath)) throw new Error(`another writer in this process is already writing ${tmpPath}; pass a different tmpSuffix`);
    rmSync(tmpPath, { force: true });
    const bloomBits = opts.expectedNames === undefined ? DEFAULT_STAGE_BLOOM_BITS : Math.min(MAX_STAGE_BLOOM_BITS, bloomBitsFor(opts.expectedNames));
    const staging = opts.staging ?? 'auto';
    const workerFile = staging === 'inline' ? null : stageWorkerFile();
    if (staging === 'thread' && workerFile === null) throw new Error('staging on a thread needs the built compiler/stage-worker.js (run from dist/)');
    // On one core a second thread only adds the messages' cost.
    const threaded = workerFile !== null && (staging === 'thread' || ((opts.expectedNames ?? 0) >= THREAD_FROM_NAMES && availableParallelism() > 1));
    let stager: Stager;
    try {
      createStageFile(stagePath);
      stager = threaded ? new ThreadStager(stagePath, bloomBits, workerFile) : StageTable.open(stagePath, bloomBits);
    } catch (err) {
      rmSync(stagePath, { force: true });
      throw new Error(`cannot create the staging table ${stagePath}: ${(err as Error).message}`, { cause: err });
    }
    activeTempFiles.add(tmpPath);
    activeTempFiles.add(stagePath);
    return new BlocklistWriter(dataDir, tmpPath, stagePath, stager);
  }

  addSource(rec: SourceRecord): number {
    this.assertOpen();
    if (this.sources.some((s) => s.name === rec.name)) throw new Error(`source ${rec.name} was added twice`);
    const id = this.sources.length + 1;
    this.sources.push({ ...rec, id });
    return id;
  }

  updateSource(id: number, patch: Partial<SourceRecord>): void {
    this.assertOpen();
    const rec = this.sources[id - 1];
    if (!rec) throw new Error(`updateSource: no source with id ${id}`);
    Object.assign(rec, patch, { id });
  }

  /** One list entry. Hot: called once per parsed entry; `name` is already normalised. */
  addRule(name: string, action: 'block' | 'allow', scope: 'exact' | 'subtree', strong: boolean, sourceId: number, vendor: string | null): void {
    if (this.state !== 'open') this.assertOpen();
    if (sourceId < 1 || sourceId > this.sources.length) throw new Error(`addRule ${name}: unknown source id ${sourceId}`);
    const claim = (action === 'allow' ? ALLOW_BIT : 0) | (scope === 'subtree' ? Scope.Subtree : Scope.Exact) | (strong ? STRONG : 0);
    const vendorId = vendor === null ? 0 : (this.vendorIds.get(vendor) ?? this.internVendor(vendor));
    this.stager.add(name, (sourceId * VENDOR_SPAN + vendorId) * CLAIM_BITS + claim);
    if (scope === 'subtree') this.subtreeClaims = true;
    this.entries++;
  }

  /** A rule a suffix table cannot hold; the server matches it against whole names. */
  addPattern(kind: 'regex' | 'glob', pattern: string, action: 'block' | 'allow', sourceId: number): void {
    this.assertOpen();
    if (sourceId < 1 || sourceId > this.sources.length) throw new Error(`addPattern ${pattern}: unknown source id ${sourceId}`);
    this.stager.pattern(kind, pattern, action === 'allow' ? 1 : 0, sourceId);
  }

  /**
   * Remembers the staging state so that everything added after it can be taken back (a fresh
   * download that turns out to be unusable gives way to the source's last good copy).
   */
  mark(): WriterMark {
    this.assertOpen();
    const name = `m${++this.marks}`;
    this.stager.savepoint('savepoint', name);
    return { name, entries: this.entries };
  }

  /** Drops every rule and pattern added since `mark`; the mark stays usable. */
  rollbackTo(mark: WriterMark): void {
    this.assertOpen();
    this.stager.savepoint('rollback', mark.name);
    this.entries = mark.entries;
  }

  /** Keeps what was added since `mark` and forgets the mark. */
  release(mark: WriterMark): void {
    this.assertOpen();
    this.stager.savepoint('release', mark.name);
  }

  /** Merge, compress, Bloom filter, meta, fsync, atomic swap. */
  finish(meta: FinishOptions): WriteStats {
    this.assertOpen();
    const started = Date.now();
    try {
      const stagedBloom = this.stager.complete();
      const stage = (this.stage = openStageFile(this.stagePath));

      meta.onPhase?.('sources');
      createOutput(this.tmpPath, this.sources);
      stage.prepare('ATTACH DATABASE ? AS out').run(this.tmpPath);
      stage.pragma('out.journal_mode = OFF');
      stage.pragma('out.synchronous = OFF');
      stage.pragma('out.locking_mode = EXCLUSIVE');
      stage.pragma(`out.cache_size = -${FINAL_CACHE_KIB}`);
      stage.exec('BEGIN');
      const patterns = stage
        .prepare('INSERT INTO out.pattern (kind, pattern, action, source_id) SELECT kind, pattern, action, source_id FROM main.pattern ORDER BY id')
        .run().changes;

      meta.onPhase?.('rules');
      const rules = this.writeRules(stage, stagedBloom);

      meta.onPhase?.('bloom');
      const bits = rules.bloom.bits;
      stage.prepare('INSERT INTO out.bloom (id, bits, hashes) VALUES (1, ?, ?)').run(Buffer.from(bits.buffer, bits.byteOffset, bits.byteLength), rules.bloom.hashes);
      const metaRows: Record<string, string> = {
        ...meta.extra,
        [Meta.SchemaVersion]: String(SCHEMA_VERSION),
        [Meta.BuiltAt]: String(Date.now()),
        [Meta.CompilerVersion]: meta.compilerVersion,
        [Meta.Rules]: String(rules.rows),
        [Meta.Patterns]: String(patterns),
        [Meta.Sources]: String(this.sources.length),
        [Meta.Entries]: String(this.entries),
        [Meta.Duplicates]: String(this.entries - rules.names),
        [Meta.Compressed]: String(rules.compressed),
      };
      const putMeta = stage.prepare('INSERT INTO out.meta (key, value) VALUES (?, ?)');
      for (const [k, v] of Object.entries(metaRows)) putMeta.run(k, v);
      stage.pragma(`out.user_version = ${SCHEMA_VERSION}`);
      stage.exec('COMMIT');
      stage.exec('DETACH DATABASE out');
      this.closeStage();

      meta.onPhase?.('sync');
      fsyncPath(this.tmpPath);
      const bytes = statSync(this.tmpPath).size;

      meta.onPhase?.('swap');
      swapIntoPlace(this.dataDir, this.tmpPath, this.livePath);
      this.state = 'finished';
      activeTempFiles.delete(this.tmpPath);
      meta.onPhase?.('done');
      return {
        entries: this.entries,
        rules: rules.rows,
        duplicates: this.entries - rules.names,
        compressed: rules.compressed,
        patterns,
        bytes,
        ms: Date.now() - started,
        path: this.livePath,
      };
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** Removes the temp files; the live table is untouched. Safe to call more than once. */
  abort(): void {
    if (this.state === 'open') this.state = 'aborted';
    this.closeStage();
    if (this.state !== 'finished') rmSync(this.tmpPath, { force: true });
    activeTempFiles.delete(this.tmpPath);
  }

  private assertOpen(): void {
    if (this.state !== 'open') throw new Error(`the blocklist writer for ${this.tmpPath} is ${this.state}`);
  }

  private internVendor(vendor: string): number {
    const id = this.vendorNames.length;
    if (id > MAX_VENDORS) throw new Error(`more than ${MAX_VENDORS} distinct vendors; cannot stage ${vendor}`);
    this.vendorIds.set(vendor, id);
    this.vendorNames.push(vendor);
    return id;
  }

  private closeStage(): void {
    this.stager.abort();
    if (this.stage) {
      if (this.stage.open) this.stage.close();
      this.stage = null;
    }
    rmSync(this.stagePath, { force: true });
    activeTempFiles.delete(this.stagePath);
  }

  /**
   * The one pass over all entries, inside SQLite: the staged rows are sorted by (key, packed) and
   * inserted into out.rule, merging a name's rows by upsert. A JS function sees rows in that order
   * (the WHERE of the INSERT's SELECT, evaluated row by row over the sorted CTE) and says whether
   * to keep each: a claim is dropped when an ancestor's subtree claim of the same action already
   * gives the name, and so everything below it, at least the same rank (compress). Without any
   * subtree claim there is nothing to compress and the call (a third of the pass) is left out: a
   * hosts list costs no JS here at all. The function checks the order it is given, so an SQLite
   * that stopped honouring it fails the compile instead of compressing wrongly.
   */
  private writeRules(stage: Database.Database, stagedBloom: Uint8Array): { rows: number; names: number; compressed: number; bloom: BloomFilter } {
    const stack = new AncestorStack();
    let compressed = 0;
    // The name whose rows are arriving: what its ancestors pass down and what it kept so far.
    let key: string | null = null;
    let inheritedBlock = 0;
    let inheritedAllow = 0;
    let keptBlock = 0;
    let keptAllow = 0;

    const endName = (): void => {
      if (keptBlock === 0 && keptAllow === 0) compressed++;
      else stack.push(key!, keptBlock, keptAllow);
    };

    const keep = (k: string, packed: number): number => {
      if (k !== key) {
        if (key !== null) {
          if (k < key) throw new Error(`internal error: staged rules arrived out of order (${JSON.stringify(key)} before ${JSON.stringify(k)})`);
          endName();
        }
        key = k;
        keptBlock = 0;
        keptAllow = 0;
        stack.enter(k);
        inheritedBlock = stack.inheritedBlock;
        inheritedAllow = stack.inheritedAllow;
      }
      const claim = packed & 15;
      if ((claim & ALLOW_BIT) === 0) {
        if (inheritedBlock >= blockRankSelf(claim)) return 0;
        keptBlock = keptBlock === 0 ? claim : mergeClaims(keptBlock, claim);
      } else {
        const v = claim & 7;
        if (inheritedAllow >= allowRankSelf(v)) return 0;
        keptAllow = keptAllow === 0 ? v : mergeClaims(keptAllow, v);
      }
      return 1;
    };

    stage.function('hushdns_keep', { deterministic: false, directOnly: true }, (k: unknown, packed: unknown) => keep(k as string, packed as number));
    stage.function('hushdns_merge', { deterministic: true, directOnly: true }, (a: unknown, b: unknown) => mergeClaims(a as number, b as number));
    stage.exec('CREATE TABLE vendor_name (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
    const putVendor = stage.prepare('INSERT INTO vendor_name (id, name) VALUES (?, ?)');
    for (let id = 1; id < this.vendorNames.length; id++) putVendor.run(id, this.vendorNames[id]);

    // packed: bits 0-3 claim (bit 3 allow, bits 0-1 scope), 4-19 vendor id, 20+ source id (see
    // CLAIM_BITS). Rows of one name arrive ordered by source id, so appending a source that differs
    // from the last one keeps each list sorted and free of repeats. MATERIALIZED keeps SQLite from
    // flattening the sorted CTE into the INSERT, which would call hushdns_keep before sorting.
    stage.exec(`
      WITH staged AS MATERIALIZED (SELECT key, packed FROM main.claim ORDER BY key, packed)
      INSERT INTO out.rule (key, block, allow, vendor, block_sources, allow_sources)
      SELECT key,
        CASE WHEN packed & 8 THEN 0 ELSE packed & 7 END,
        CASE WHEN packed & 8 THEN packed & 7 ELSE 0 END,
        CASE WHEN (packed >> 4) & 65535 THEN (SELECT name FROM vendor_name WHERE id = (packed >> 4) & 65535) END,
        CASE WHEN packed & 8 THEN NULL ELSE CAST(packed >> 20 AS TEXT) END,
        CASE WHEN packed & 8 THEN CAST(packed >> 20 AS TEXT) END
      FROM staged
      WHERE ${this.subtreeClaims ? 'hushdns_keep(key, packed)' : 'true'}
      ON CONFLICT (key) DO UPDATE SET
        block = CASE WHEN excluded.block = 0 THEN block WHEN block = 0 THEN excluded.block ELSE hushdns_merge(block, excluded.block) END,
        allow = CASE WHEN excluded.allow = 0 THEN allow WHEN allow = 0 THEN excluded.allow ELSE hushdns_merge(allow, excluded.allow) END,
        vendor = coalesce(vendor, excluded.vendor),
        block_sources = ${appendSource('block_sources')},
        allow_sources = ${appendSource('allow_sources')}
    `);
    if (key !== null) endName();
    const rows = stage.prepare('SELECT count(*) FROM out.rule').pluck().get() as number;
    const names = rows + compressed;
    return { rows, names, compressed, bloom: this.finalBloom(stage, stagedBloom, names) };
  }

  /**
   * The staged Bloom filter folded to the size `names` need (a filter of 2^k bits ORed onto its
   * first 2^j bits answers as a 2^j-bit filter: BloomFilter takes each bit position modulo its
   * size), or, when more names came than it was sized for, a new one from the written keys.
   */
  private finalBloom(stage: Database.Database, staged: Uint8Array, names: number): BloomFilter {
    const want = bloomBitsFor(names);
    if (staged.length * 8 < want) {
      const bloom = new BloomFilter(new Uint8Array(want / 8), BLOOM_HASHES);
      for (const k of stage.prepare('SELECT key FROM out.rule').pluck().iterate() as IterableIterator<string>) bloom.add(k);
      return bloom;
    }
    const bytes = want / 8;
    const folded = staged.slice(0, bytes);
    for (let off = bytes; off < staged.length; off += bytes) {
      for (let i = 0; i < bytes; i++) folded[i] |= staged[off + i];
    }
    return new BloomFilter(folded, BLOOM_HASHES);
  }
}

/** Bits of a Bloom filter for `names`: what BloomFilter.forCount gives, rounded up to a power of two. */
function bloomBitsFor(names: number): number {
  const bits = BloomFilter.bytesFor(names) * 8;
  return 2 ** Math.ceil(Math.log2(bits));
}

/** SQL that appends excluded.<col> to <col> unless it is already the last id there. */
function appendSource(col: string): string {
  return `CASE WHEN excluded.${col} IS NULL THEN ${col} WHEN ${col} IS NULL THEN excluded.${col}
    WHEN ${col} = excluded.${col} OR substr(${col}, -length(excluded.${col}) - 1) = ',' || excluded.${col} THEN ${col}
    ELSE ${col} || ',' || excluded.${col} END`;
}

/** Creates the table file with its schema and the source rows; the rest is written through ATTACH. */
function createOutput(path: string, sources: readonly (SourceRecord & { id: number })[]): void {
  const out = new Database(path);
  try {
    out.pragma('journal_mode = OFF');
    out.pragma('synchronous = OFF');
    out.exec(SCHEMA_SQL);
    const insert = out.prepare(`INSERT INTO source (id, name, url, format, vendor, category, license, status, fetched_at, etag,
      last_modified, sha256, entries, invalid, unsupported, detail, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`);
    out.transaction(() => {
      for (const s of sources) {
        insert.run(
          s.id,
          s.name,
          s.url ?? null,
          s.format ?? null,
          s.vendor ?? null,
          s.category ?? null,
          s.license ?? null,
          s.status,
          s.fetchedAt ?? null,
          s.etag ?? null,
          s.lastModified ?? null,
          s.sha256 ?? null,
          s.entries ?? 0,
          s.invalid ?? 0,
          s.unsupported ?? 0,
          s.detail === undefined || s.detail === null ? null : JSON.stringify(s.detail),
          s.error ?? null,
        );
      }
    })();
  } finally {
    out.close();
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Keeps the current table as blocklist.prev.sqlite (hard link under a temp name, then rename, so
 * prev is always whole), then renames the new file over the live name and syncs the directory.
 */
function swapIntoPlace(dataDir: string, tmpPath: string, livePath: string): void {
  if (existsSync(livePath)) {
    const prevPath = join(dataDir, BLOCKLIST_PREV_FILE);
    const prevTmp = join(dataDir, `${BLOCKLIST_PREV_FILE}.${process.pid}.tmp`);
    rmSync(prevTmp, { force: true });
    try {
      linkSync(livePath, prevTmp);
    } catch {
      // Filesystems without hard links (some network and FUSE mounts) get a copy instead.
      copyFileSync(livePath, prevTmp);
      fsyncPath(prevTmp);
    }
    renameSync(prevTmp, prevPath);
  }
  renameSync(tmpPath, livePath);
  try {
    fsyncPath(dataDir);
  } catch {
    // Not every platform can fsync a directory; the rename itself is still atomic.
  }
}

/** What a table says about one of its sources, for the next build's report and checks. */
export interface PreviousSource {
  /** Rules the source contributed. */
  entries: number;
  /** Valid rules and patterns the list held before exclusions and inclusions (older tables: entries). */
  valid: number;
}

/** The sources of an existing table by name, or an empty map when there is none we can read. */
export function readPreviousSources(path: string): Map<string, PreviousSource> {
  const out = new Map<string, PreviousSource>();
  if (!existsSync(path)) return out;
  let db: Database.Database | null = null;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    if (db.pragma('user_version', { simple: true }) !== SCHEMA_VERSION) return out;
    for (const row of db.prepare('SELECT name, entries, detail FROM source').all() as { name: string; entries: number; detail: string | null }[]) {
      let valid = row.entries;
      try {
        const d = row.detail === null ? null : (JSON.parse(row.detail) as { valid?: unknown });
        if (typeof d?.valid === 'number') valid = d.valid;
      } catch {
        // A detail column we cannot read leaves the entry count as the best measure.
      }
      out.set(row.name, { entries: row.entries, valid });
    }
  } catch {
    // An unreadable previous table only means no deltas in the report.
  } finally {
    db?.close();
  }
  return out;
}

const TEMP_FILE = /^blocklist\.(?:prev\.)?sqlite\.(\d+)(?:\..+)?\.tmp$/;

/** Temp files of writers whose process is gone (killed mid-compile). */
function removeStaleTempFiles(dataDir: string): void {
  let names: string[];
  try {
    names = readdirSync(dataDir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = TEMP_FILE.exec(name);
    if (!m) continue;
    const path = join(dataDir, name);
    const pid = Number(m[1]);
    const stale = pid === process.pid ? !activeTempFiles.has(path) : !processIsAlive(pid);
    if (stale) rmSync(path, { force: true });
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
