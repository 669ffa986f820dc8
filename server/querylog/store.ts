// The query log's SQLite file (or an in-memory database with --querylog memory): raw rows for the
// log view, and roll-ups kept at write time so every statistic reads a few thousand roll-up rows
// instead of millions of queries. The only module that writes it with SQL; it runs in the writer
// thread (worker.ts) or, from TypeScript sources in tests, inline (backend.ts).
//
// Layout, chosen for small and few writes on an SD card:
// - q: one row per query; the row key is the time (ms × 64 + a sequence number), so time ranges
//   are key ranges and the newest-first page needs no time index. Strings (names, clients,
//   reasons, vendors, upstreams) live once in `str` (strings.ts); a row holds their ids. No
//   secondary index: each insert appends to one b-tree, and a filtered page scans a bounded key
//   range instead.
// - roll-ups (rollups.ts): hour × client × vendor × outcome, the hourly outcome series, names,
//   blocked names, rules and lists; hourly, and daily for long windows. Computed by SQLite from
//   each batch's rows inside the batch's transaction.
// - Space: retention and the size cap drop the oldest hour first (raw rows before roll-ups), and
//   the strings only those hours used go with them, so the file shrinks to what is kept.
import { existsSync, renameSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { VendorCatalog } from '../../common/vendors.js';
import { OUTCOME_CODE, OUTCOMES, PROTOCOLS } from './codes.js';
import { BatchRollup } from './batch-rollup.js';
import { batchSql, dayTable, deleteDaySql, deleteDaysSql, deleteHoursSql, FAMILIES, FAMILY_LIST, foldSql, HOURS_PER_DAY, planWindow, schemaSql, tierSource, upsertSql, type Family, type TierState } from './rollups.js';
import { StringTable } from './strings.js';
import type {
  Batch,
  ByOutcome,
  DeviceCounts,
  HitCounts,
  ListHits,
  LogRow,
  MaintainResult,
  Page,
  PageArgs,
  ReadApi,
  RuleHits,
  StoreSize,
  Summary,
  TopArgs,
  TopEntry,
  VendorCount,
  Window,
  WriteResult,
} from './types.js';

/** 2: roll-ups by hour × client × vendor × outcome with a daily tier, str.last, allow hits. */
export const STORE_VERSION = 2;
/** Row keys per millisecond: key = ms × KEY_SCALE + sequence. */
export const KEY_SCALE = 64;
export const HOUR_MS = 3_600_000;
/** Rows a page may look at before it answers with what it found and a cursor to go on. */
export const PAGE_SCAN_ROWS = 200_000;
const DELETE_CHUNK = 50_000;
/** The size cap aims this far below the cap, so the next writes do not start over at once. */
const SIZE_TARGET = 0.9;

export const keyOf = (ms: number): number => Math.floor(ms) * KEY_SCALE;
export const timeOfKey = (key: number): number => Math.floor(key / KEY_SCALE);
export const hourOf = (ms: number): number => Math.floor(ms / HOUR_MS);
const HOUR_KEYS = KEY_SCALE * HOUR_MS;

export interface StoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  retentionMs: number;
  maxBytes: number;
  catalog: VendorCatalog;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS str (id INTEGER PRIMARY KEY, s TEXT NOT NULL UNIQUE, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS q (
  id INTEGER PRIMARY KEY,
  client INTEGER NOT NULL,
  name INTEGER NOT NULL,
  qtype INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  rcode INTEGER NOT NULL,
  vendor INTEGER,
  reason INTEGER,
  upstream INTEGER,
  us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reason_meta (reason INTEGER PRIMARY KEY, rule INTEGER NOT NULL, action INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reason_list (reason INTEGER NOT NULL, list INTEGER NOT NULL, PRIMARY KEY (reason, list)) WITHOUT ROWID;
${FAMILY_LIST.map(schemaSql).join('\n')}
`;

const BLOCKED = OUTCOME_CODE.blocked;
/** Answered and not blocked: what the API calls allowed. */
const isAllowed = (outcome: number) => outcome !== BLOCKED && outcome !== OUTCOME_CODE.refused && outcome !== OUTCOME_CODE.servfail;

/** A file of an older layout: moved aside (kept, never rewritten) and a new log started. */
class OlderLayoutError extends Error {}

type Stmt = Database.Statement;
type StmtName = 'insert' | 'deleteBefore' | 'keyAtOffset' | 'oldest' | 'newest' | 'setMeta' | 'series' | 'nextHour' | 'pageBound' | 'reasonLists';

export class QueryLogStore implements ReadApi {
  readonly path: string;
  /** Set when an existing file was moved aside at open: where it went, and why. */
  readonly setAside: { path: string; reason: string } | null;
  private readonly db: Database.Database;
  private readonly strings: StringTable;
  private readonly retentionMs: number;
  private readonly maxBytes: number;
  private lastKey: number;
  private rowCount: number;
  private readonly tiers: TierState;
  private readonly s: Record<StmtName, Stmt>;
  /** Roll-ups SQL computes over the batch's rows (filtered or joined); the rest are summed in `rollup`. */
  private readonly batchStmts: Stmt[];
  private readonly rollup = new BatchRollup();
  private readonly upserts: { series: Stmt; cube: Stmt; name: Stmt };
  private readonly daily: { fold: Stmt; deleteDays: Stmt; deleteDay: Stmt; table: string }[];
  private readonly deleteHours: Stmt[];
  private readonly readStmts = new Map<string, Stmt>();

  private constructor(path: string, db: Database.Database, opts: StoreOptions, setAside: { path: string; reason: string } | null) {
    this.path = path;
    this.db = db;
    this.setAside = setAside;
    this.retentionMs = opts.retentionMs;
    this.maxBytes = opts.maxBytes;
    this.strings = new StringTable(db, opts.catalog);
    this.s = {
      insert: db.prepare('INSERT INTO q (id, client, name, qtype, flags, rcode, vendor, reason, upstream, us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      deleteBefore: db.prepare('DELETE FROM q WHERE id < ?'),
      keyAtOffset: db.prepare('SELECT id FROM q ORDER BY id LIMIT 1 OFFSET ?').pluck(),
      oldest: db.prepare('SELECT min(id) FROM q').pluck(),
      newest: db.prepare('SELECT max(id) FROM q').pluck(),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      series: db.prepare(`SELECT hour, outcome, sum(n) FROM h_series WHERE hour >= ? AND hour < ? GROUP BY hour, outcome`).raw(),
      nextHour: db.prepare('SELECT min(hour) FROM h_series WHERE hour > ?').pluck(),
      pageBound: db.prepare('SELECT id FROM q WHERE id < ? AND id >= ? ORDER BY id DESC LIMIT 1 OFFSET ?').pluck(),
      reasonLists: db.prepare('SELECT s FROM reason_list JOIN str ON str.id = reason_list.list WHERE reason = ? ORDER BY s').pluck(),
    };
    this.batchStmts = FAMILY_LIST.filter((f) => !f.inMemory).map((f) => db.prepare(batchSql(f, HOUR_KEYS)));
    this.upserts = { series: db.prepare(upsertSql(FAMILIES.series)), cube: db.prepare(upsertSql(FAMILIES.cube)), name: db.prepare(upsertSql(FAMILIES.name)) };
    this.deleteHours = FAMILY_LIST.map((f) => db.prepare(deleteHoursSql(f)));
    this.daily = FAMILY_LIST.filter((f) => f.daily).map((f) => ({ fold: db.prepare(foldSql(f)), deleteDays: db.prepare(deleteDaysSql(f)), deleteDay: db.prepare(deleteDaySql(f)), table: dayTable(f) }));
    this.lastKey = (this.s.newest.get() as number | null) ?? 0;
    this.rowCount = db.prepare('SELECT count(*) FROM q').pluck().get() as number;
    const meta = new Map(db.prepare('SELECT key, value FROM meta').raw().all() as [string, string][]);
    const newestHour = db.prepare('SELECT max(hour) FROM h_series').pluck().get() as number | null;
    this.tiers = {
      floor: Number(meta.get('floor') ?? newestHour ?? 0),
      folded: Number(meta.get('folded') ?? newestHour ?? 0),
      newest: newestHour,
    };
  }

  /**
   * Opens (or creates) the log. A file SQLite cannot read, or one written by a newer hushdns, is
   * renamed aside (`querylog.sqlite.unreadable-<time>`), one of an older layout likewise
   * (`querylog.sqlite.v1-<time>`), and a new log started: losing history is better than losing
   * the log, and the old file stays for whoever wants it.
   */
  static open(opts: StoreOptions): QueryLogStore {
    const memory = opts.path === ':memory:';
    try {
      return QueryLogStore.openOnce(opts, null);
    } catch (err) {
      if (memory || !existsSync(opts.path)) throw err;
      const older = err instanceof OlderLayoutError;
      const aside = `${opts.path}.${older ? err.message : 'unreadable'}-${Date.now()}`;
      renameSync(opts.path, aside);
      for (const suffix of ['-wal', '-shm']) if (existsSync(opts.path + suffix)) renameSync(opts.path + suffix, aside + suffix);
      const reason = older ? `it has the layout of an earlier hushdns (${err.message})` : `it could not be read: ${(err as Error).message}`;
      return QueryLogStore.openOnce(opts, { path: aside, reason });
    }
  }

  private static openOnce(opts: StoreOptions, setAside: { path: string; reason: string } | null): QueryLogStore {
    const db = new Database(opts.path);
    try {
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > STORE_VERSION) throw new Error(`${opts.path} has query-log version ${version}; this hushdns writes version ${STORE_VERSION}`);
      if (version > 0 && version < STORE_VERSION) throw new OlderLayoutError(`v${version}`);
      // Must precede the first table: freed pages can then be handed back to the file system.
      db.pragma('auto_vacuum = INCREMENTAL');
      if (opts.path !== ':memory:') db.pragma('journal_mode = WAL');
      // WAL + NORMAL: a crash of the process loses nothing committed; a power cut may lose the last
      // batch but never corrupts the file. Fewer syncs spare the SD card.
      db.pragma('synchronous = NORMAL');
      db.pragma('journal_size_limit = 4194304');
      db.pragma('cache_size = -8192');
      db.pragma('temp_store = MEMORY');
      db.exec(SCHEMA);
      if (version === 0) db.pragma(`user_version = ${STORE_VERSION}`);
      return new QueryLogStore(opts.path, db, opts, setAside);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Writes one batch and its roll-ups in one transaction. */
  write(b: Batch): WriteResult {
    const started = performance.now();
    if (b.strings.reset) this.strings.resetSession();
    this.strings.learn(b.strings.base, b.strings.texts, b.reasons);
    if (b.n === 0) return { rows: 0, ms: performance.now() - started };
    const before = { lastKey: this.lastKey, floor: this.tiers.floor, folded: this.tiers.folded, newest: this.tiers.newest };
    try {
      this.db.transaction(() => this.writeRows(b))();
    } catch (err) {
      // Nothing of the batch is in the file: forget what the transaction handed out.
      this.rollup.clear();
      this.strings.invalidate();
      this.lastKey = before.lastKey;
      Object.assign(this.tiers, { floor: before.floor, folded: before.folded, newest: before.newest });
      throw err;
    }
    this.rowCount += b.n;
    return { rows: b.n, ms: performance.now() - started };
  }

  private writeRows(b: Batch): void {
    const str = this.strings;
    const insert = this.s.insert;
    const rollup = this.rollup;
    const first = this.nextKey(b.time[0]);
    let key = first;
    for (let i = 0; i < b.n; i++) {
      if (i > 0) key = this.nextKey(b.time[i]);
      const hour = Math.floor(key / HOUR_KEYS);
      const nameSid = b.name[i];
      const name = str.use(nameSid, hour);
      const client = str.use(b.client[i], hour);
      const vendor = b.vendor[i] >= 0 ? str.use(b.vendor[i], hour) : str.vendorOf(nameSid, hour);
      const flags = b.flags[i];
      insert.run(key, client, name, b.qtype[i], flags, b.rcode[i], vendor === 0 ? null : vendor, b.reason[i] >= 0 ? str.useReason(b.reason[i], hour) : null, b.upstream[i] >= 0 ? str.use(b.upstream[i], hour) : null, b.us[i]);
      rollup.add(hour, key, client, vendor, flags & 7, name);
    }
    str.flushMarks();
    rollup.flush(this.upserts);
    for (const stmt of this.batchStmts) stmt.run(first, key);
    const firstHour = Math.floor(first / HOUR_KEYS);
    const newest = Math.floor(key / HOUR_KEYS);
    if (this.tiers.newest === null) {
      // The first rows of a new log: nothing older exists, nothing is folded yet.
      this.setTier('floor', firstHour);
      this.setTier('folded', firstHour);
    }
    this.tiers.newest = newest;
    if (newest > this.tiers.folded) {
      // Hours before the newest are complete (keys only grow): add them to their days once.
      for (const d of this.daily) d.fold.run(this.tiers.folded, newest);
      this.setTier('folded', newest);
    }
  }

  private setTier(key: 'floor' | 'folded', value: number): void {
    this.tiers[key] = value;
    this.s.setMeta.run(key, String(value));
  }

  private nextKey(ms: number): number {
    let key = Math.floor(ms) * KEY_SCALE;
    if (key <= this.lastKey) key = this.lastKey + 1;
    this.lastKey = key;
    return key;
  }

  /**
   * Retention by age, then the size cap: the oldest hour of raw rows first, then the oldest hour
   * of roll-ups (with the strings only they used), one hour at a time until the file is under
   * the cap. The newest hour always stays; freed pages go back to the file system.
   */
  maintain(now = Date.now()): MaintainResult {
    const started = performance.now();
    const cutoff = now - this.retentionMs;
    let deletedRows = this.deleteRowsBefore(keyOf(cutoff));
    const dropped = this.moveFloor(hourOf(cutoff));
    let deletedHours = dropped.hours;
    let deletedStrings = dropped.strings;
    let overCap = false;
    const target = this.maxBytes * SIZE_TARGET;
    while (this.usedBytes() > target) {
      const newest = this.tiers.newest;
      if (newest === null) {
        overCap = true;
        break;
      }
      const oldest = this.s.oldest.get() as number | null;
      const oldestHour = oldest === null ? null : Math.floor(oldest / HOUR_KEYS);
      if (oldestHour !== null && oldestHour < newest) {
        deletedRows += this.deleteRowsBefore((oldestHour + 1) * HOUR_KEYS);
        continue;
      }
      if (this.tiers.floor < newest) {
        const next = (this.s.nextHour.get(this.tiers.floor) as number | null) ?? newest;
        const r = this.moveFloor(Math.min(next, newest));
        deletedHours += r.hours;
        deletedStrings += r.strings;
        continue;
      }
      overCap = true;
      break;
    }
    if (this.fileBytes() > this.maxBytes) {
      this.db.pragma('incremental_vacuum');
      if (this.path !== ':memory:') this.db.pragma('wal_checkpoint(TRUNCATE)');
    }
    return { deletedRows, deletedHours, deletedStrings, bytes: this.fileBytes(), overCap, ms: performance.now() - started };
  }

  /**
   * Drops every roll-up hour before `hour` (and raw rows, which never outlive their roll-ups):
   * hourly rows, whole days, and the cut day rebuilt from the hours it keeps. Then the strings
   * nothing kept refers to.
   */
  private moveFloor(hour: number): { hours: number; strings: number } {
    const from = this.tiers.floor;
    if (hour <= from || this.tiers.newest === null) return { hours: 0, strings: 0 };
    let strings = 0;
    this.db.transaction(() => {
      this.rowCount = Math.max(0, this.rowCount - this.s.deleteBefore.run(hour * HOUR_KEYS).changes);
      for (const stmt of this.deleteHours) stmt.run(hour);
      const day = Math.floor(hour / HOURS_PER_DAY);
      for (const d of this.daily) {
        d.deleteDays.run(day);
        if (hour > day * HOURS_PER_DAY) {
          d.deleteDay.run(day);
          d.fold.run(hour, Math.min((day + 1) * HOURS_PER_DAY, this.tiers.folded));
        }
      }
      this.setTier('floor', hour);
      strings = this.strings.sweep(hour);
    })();
    return { hours: hour - from, strings };
  }

  close(): void {
    if (!this.db.open) return;
    if (this.path !== ':memory:') {
      try {
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        // Another reader holds the WAL: it is folded in at the next open.
      }
    }
    this.db.close();
  }

  // ---- reads -------------------------------------------------------------------------------

  summary(args: Window & { topVendors: number }): Summary {
    const [h0, h1] = hours(args);
    const byOutcome: ByOutcome = {};
    const perHour = new Map<number, { b: number; a: number }>();
    let total = 0;
    for (const [hour, outcome, n] of this.s.series.all(h0, h1) as [number, number, number][]) {
      const name = OUTCOMES[outcome] ?? 'servfail';
      byOutcome[name] = (byOutcome[name] ?? 0) + n;
      total += n;
      let p = perHour.get(hour);
      if (!p) perHour.set(hour, (p = { b: 0, a: 0 }));
      if (outcome === BLOCKED) p.b += n;
      else if (isAllowed(outcome)) p.a += n;
    }
    const series: Summary['series'] = [];
    for (let h = h0; h < h1; h++) series.push({ hour: h * HOUR_MS, blocked: perHour.get(h)?.b ?? 0, allowed: perHour.get(h)?.a ?? 0 });
    const cube = this.cube(h0, h1);
    const blocked = byOutcome.blocked ?? 0;
    const windowMinutes = Math.max(1, (Math.min(args.until, Date.now()) - args.since) / 60_000);
    return {
      window: { since: h0 * HOUR_MS, until: h1 * HOUR_MS },
      total,
      blocked,
      allowed: total - blocked - (byOutcome.refused ?? 0) - (byOutcome.servfail ?? 0),
      byOutcome,
      clients: new Set(cube.map((r) => r[0])).size,
      averagePerMinute: round1(total / windowMinutes),
      topVendors: this.vendorCounts(cube).slice(0, args.topVendors),
      series,
    };
  }

  devices(args: Window): DeviceCounts[] {
    const [h0, h1] = hours(args);
    const byClient = new Map<number, DeviceCounts & { byVendor: Map<number, VendorCount> }>();
    const vendorText = this.texts();
    for (const [client, vendor, outcome, n, last] of this.cube(h0, h1)) {
      let d = byClient.get(client);
      if (!d) byClient.set(client, (d = { client: this.strings.text(client) ?? `#${client}`, total: 0, blocked: 0, allowed: 0, byOutcome: {}, lastSeen: null, vendors: [], byVendor: new Map() }));
      count(d, outcome, n);
      const seen = timeOfKey(last);
      if (d.lastSeen === null || seen > d.lastSeen) d.lastSeen = seen;
      if (vendor === 0) continue;
      let v = d.byVendor.get(vendor);
      if (!v) d.byVendor.set(vendor, (v = { vendor: vendorText(vendor), blocked: 0, allowed: 0, byOutcome: {} }));
      count(v, outcome, n);
    }
    const out: DeviceCounts[] = [];
    for (const { byVendor, ...d } of byClient.values()) {
      d.vendors = [...byVendor.values()].sort((a, b) => b.blocked + b.allowed - (a.blocked + a.allowed));
      out.push(d);
    }
    return out.sort((a, b) => b.total - a.total);
  }

  top(args: TopArgs): TopEntry[] {
    const [h0, h1] = hours(args);
    const limit = args.limit;
    const text = this.texts();
    switch (args.kind) {
      case 'blocked': {
        // The reason of the newest hour a name was blocked in, with the lists behind it.
        const rows = this.tierQuery(FAMILIES.block, h0, h1, 'SELECT name, sum(n) AS c, reason, max(t) FROM src GROUP BY name HAVING c > 0 ORDER BY c DESC LIMIT ?', limit) as [number, number, number, number][];
        return rows.map(([name, n, reason]) => ({ key: text(name), count: n, blocked: n, rule: this.strings.text(reason), lists: this.s.reasonLists.all(reason) as string[] }));
      }
      case 'queried': {
        const rows = this.tierQuery(FAMILIES.name, h0, h1, 'SELECT name, sum(n) AS c, sum(blocked) FROM src GROUP BY name HAVING c > 0 ORDER BY c DESC LIMIT ?', limit) as [number, number, number][];
        return rows.map(([name, n, blocked]) => ({ key: text(name), count: n, blocked }));
      }
      case 'clients': {
        const rows = this.tierQuery(FAMILIES.cube, h0, h1, `SELECT client, sum(n) AS c, sum(CASE WHEN outcome = ${BLOCKED} THEN n ELSE 0 END) FROM src GROUP BY client HAVING c > 0 ORDER BY c DESC LIMIT ?`, limit) as [number, number, number][];
        return rows.map(([id, n, blocked]) => ({ key: text(id), count: n, blocked }));
      }
      case 'vendors':
        return this.vendorCounts(this.cube(h0, h1))
          .slice(0, limit)
          .map((v) => ({ key: v.vendor, count: v.blocked + v.allowed, blocked: v.blocked }));
      case 'lists':
      case 'rules': {
        const f = args.kind === 'lists' ? FAMILIES.list : FAMILIES.rule;
        const col = f.keys[0].col;
        const rows = this.tierQuery(f, h0, h1, `SELECT ${col}, sum(blocked) + sum(allowed) AS c, sum(blocked), sum(allowed) FROM src GROUP BY ${col} HAVING c > 0 ORDER BY c DESC LIMIT ?`, limit) as [number, number, number, number][];
        return rows.map(([id, n, blocked, allowed]) => ({ key: text(id), count: n, blocked, allowed }));
      }
    }
  }

  page(args: PageArgs): Page {
    const lo = keyOf(args.since);
    let hi = keyOf(args.until);
    if (args.cursor !== null && args.cursor < hi) hi = args.cursor;
    const none: Page = { rows: [], next: null, partial: false };
    if (hi <= lo) return none;
    const where: string[] = [];
    const params: unknown[] = [];
    for (const [field, value] of [
      ['client', args.client],
      ['vendor', args.vendor],
    ] as const) {
      if (!value) continue;
      const id = this.strings.find(value);
      if (id === undefined) return none;
      where.push(`q.${field} = ?`);
      params.push(id);
    }
    // Every name containing the text, however many: SQLite builds the set once per page.
    if (args.name) {
      where.push('q.name IN (SELECT id FROM str WHERE instr(s, ?) > 0)');
      params.push(args.name);
    }
    if (args.outcomes && args.outcomes.length > 0) where.push(`(q.flags & 7) IN (${args.outcomes.map((o) => o | 0).join(',')})`);
    // A filtered page looks at no more than PAGE_SCAN_ROWS rows: a rare match among millions
    // answers in bounded time with a cursor to go on from, instead of holding the writer for seconds.
    const bound = where.length > 0 ? (this.s.pageBound.get(hi, lo, PAGE_SCAN_ROWS) as number | undefined) : undefined;
    const scanLo = bound === undefined ? lo : bound + 1;
    const raw = this.db
      .prepare(
        `SELECT q.id, c.s, n.s, q.qtype, q.flags, q.rcode, r.s, v.s, u.s, q.us FROM q
         JOIN str c ON c.id = q.client JOIN str n ON n.id = q.name
         LEFT JOIN str r ON r.id = q.reason LEFT JOIN str v ON v.id = q.vendor LEFT JOIN str u ON u.id = q.upstream
         WHERE ${['q.id >= ?', 'q.id < ?', ...where].join(' AND ')} ORDER BY q.id DESC LIMIT ?`,
      )
      .raw()
      .all(scanLo, hi, ...params, args.limit) as [number, string, string, number, number, number, string | null, string | null, string | null, number][];
    const rows: LogRow[] = raw.map(([key, client, name, qtype, flags, rcode, reason, vendor, upstream, us]) => ({
      key,
      time: timeOfKey(key),
      client,
      name,
      qtype,
      protocol: PROTOCOLS[(flags >> 3) & 1],
      outcome: OUTCOMES[flags & 7] ?? 'servfail',
      rcode,
      reason,
      vendor,
      upstream,
      ms: us / 1000,
    }));
    const next = rows.length === args.limit ? rows[rows.length - 1].key : scanLo > lo ? scanLo : null;
    return { rows, next, partial: rows.length < args.limit && next !== null };
  }

  listHits(args: Window): ListHits[] {
    const text = this.texts();
    return [...this.hits(FAMILIES.list, args, null)].map(([id, h]) => ({ list: text(id), ...h }));
  }

  ruleHits(args: Window & { rules: string[] }): RuleHits[] {
    const ids = args.rules.map((r) => this.strings.find(r));
    const known = ids.filter((id): id is number => id !== undefined);
    const hits = known.length > 0 ? this.hits(FAMILIES.rule, args, known) : new Map<number, { total: HitCounts; window: HitCounts }>();
    const zero = () => ({ blocked: 0, allowed: 0 });
    return args.rules.map((rule, i) => ({ rule, ...(hits.get(ids[i] ?? -1) ?? { total: zero(), window: zero() }) }));
  }

  size(_args?: Record<string, never>): StoreSize {
    const oldest = this.s.oldest.get() as number | null;
    return { bytes: this.fileBytes(), rows: this.rowCount, oldest: oldest === null ? null : timeOfKey(oldest) };
  }

  // ---- helpers -----------------------------------------------------------------------------

  /** Blocks and allows per rule or list (only `ids` when given): over everything kept, and over the window. */
  private hits(f: Family, w: Window, ids: number[] | null): Map<number, { total: HitCounts; window: HitCounts }> {
    const [h0, h1] = hours(w);
    const col = f.keys[0].col;
    const sql = `SELECT ${col}, sum(blocked), sum(allowed) FROM src ${ids ? `WHERE ${col} IN (${ids.map(() => '?').join(', ')})` : ''} GROUP BY ${col} HAVING sum(blocked) + sum(allowed) > 0`;
    const rows = (a: number, b: number) => this.tierQuery(f, a, b, sql, ...(ids ?? [])) as [number, number, number][];
    const out = new Map<number, { total: HitCounts; window: HitCounts }>();
    for (const [id, blocked, allowed] of rows(-Infinity, Infinity)) out.set(id, { total: { blocked, allowed }, window: { blocked: 0, allowed: 0 } });
    for (const [id, blocked, allowed] of rows(h0, h1)) {
      const h = out.get(id);
      if (h) h.window = { blocked, allowed };
    }
    return out;
  }

  /** client, vendor (0: none), outcome, n, last key — over the window's hours, grouped. */
  private cube(h0: number, h1: number): [number, number, number, number, number][] {
    return this.tierQuery(FAMILIES.cube, h0, h1, 'SELECT client, vendor, outcome, sum(n) AS c, max(last) FROM src GROUP BY client, vendor, outcome HAVING c > 0') as [number, number, number, number, number][];
  }

  private vendorCounts(cube: [number, number, number, number, number][]): VendorCount[] {
    const byVendor = new Map<number, VendorCount & { n: number }>();
    const text = this.texts();
    for (const [, vendor, outcome, n] of cube) {
      if (vendor === 0) continue;
      let v = byVendor.get(vendor);
      if (!v) byVendor.set(vendor, (v = { vendor: text(vendor), blocked: 0, allowed: 0, byOutcome: {}, n: 0 }));
      count(v, outcome, n);
      v.n += n;
    }
    return [...byVendor.values()].sort((a, b) => b.n - a.n).map(({ n: _n, ...v }) => v);
  }

  /** Runs `sql` (reading the subquery `src`) over a family's tiers for hours [h0, h1). */
  private tierQuery(f: Family, h0: number, h1: number, sql: string, ...extra: unknown[]): unknown[] {
    const src = tierSource(f, planWindow(h0, h1, this.tiers));
    const text = `WITH src AS (${src.sql}) ${sql}`;
    let stmt = this.readStmts.get(text);
    if (!stmt) {
      // A window's plan has a handful of shapes; keep them all, bounded anyway.
      if (this.readStmts.size >= 200) this.readStmts.clear();
      this.readStmts.set(text, (stmt = this.db.prepare(text).raw()));
    }
    return stmt.all(...src.params, ...extra);
  }

  /** A memoised str id → text lookup for one read. */
  private texts(): (id: number) => string {
    const memo = new Map<number, string>();
    return (id) => {
      let t = memo.get(id);
      if (t === undefined) memo.set(id, (t = this.strings.text(id) ?? `#${id}`));
      return t;
    };
  }

  private deleteRowsBefore(key: number): number {
    let deleted = 0;
    for (;;) {
      const chunkEnd = this.s.keyAtOffset.get(DELETE_CHUNK) as number | undefined;
      const bound = chunkEnd === undefined ? key : Math.min(chunkEnd, key);
      const n = this.s.deleteBefore.run(bound).changes;
      deleted += n;
      if (bound === key || n === 0) break;
    }
    this.rowCount = Math.max(0, this.rowCount - deleted);
    return deleted;
  }

  private usedBytes(): number {
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    return (pages - free) * pageSize;
  }

  private fileBytes(): number {
    return (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number);
  }
}

/** Adds n queries of an outcome to a counter with totals. */
function count(c: { total?: number; blocked: number; allowed: number; byOutcome: ByOutcome }, outcome: number, n: number): void {
  const name = OUTCOMES[outcome] ?? 'servfail';
  c.byOutcome[name] = (c.byOutcome[name] ?? 0) + n;
  if (c.total !== undefined) c.total += n;
  if (outcome === BLOCKED) c.blocked += n;
  else if (isAllowed(outcome)) c.allowed += n;
}

function hours(w: Window): [number, number] {
  return [hourOf(w.since), hourOf(Math.max(w.since, w.until - 1)) + 1];
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
