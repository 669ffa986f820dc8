// The query log's SQLite file (or an in-memory database with --querylog memory): raw rows for the
// log view, and hourly roll-ups kept at write time so every statistic reads a few thousand roll-up
// rows instead of millions of queries. The only module that writes it with SQL; it runs in the
// writer thread (worker.ts) or, from TypeScript sources in tests, inline (backend.ts).
//
// Layout, chosen for small and few writes on an SD card:
// - q: one row per query; the row key is the time (ms × 64 + a sequence number), so time ranges
//   are key ranges and the newest-first page needs no time index. Strings (names, clients,
//   reasons, vendors, upstreams) live once in `str`; a row holds their ids. No secondary index:
//   each insert appends to one b-tree, and a filtered page scans a bounded key range instead.
// - hourly roll-ups, projections of hour × client × vendor × outcome each shaped for one question:
//   roll_outcome (totals, the chart), roll_client (devices, clients), roll_vendor (top vendors),
//   roll_device (the device × vendor matrix); name_roll (top queried names); block_roll (top
//   blocked names with their block reason); rule_roll and list_roll (which rule and which list
//   earn their keep).
//   Computed by SQLite from each batch's rows inside the batch's transaction.
import { existsSync, renameSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { VendorCatalog } from '../../common/vendors.js';
import { OUTCOME_CODE, OUTCOMES, PROTOCOLS } from './codes.js';
import type {
  Batch,
  DeviceCounts,
  ListHits,
  LogRow,
  MaintainResult,
  Page,
  PageArgs,
  ReadApi,
  StoreSize,
  Summary,
  TopArgs,
  TopEntry,
  VendorCount,
  Window,
  WriteResult,
} from './types.js';

export const STORE_VERSION = 1;
/** Row keys per millisecond: key = ms × KEY_SCALE + sequence. */
export const KEY_SCALE = 64;
export const HOUR_MS = 3_600_000;
/** Rows a page may look at before it answers with what it found and a cursor to go on. */
export const PAGE_SCAN_ROWS = 200_000;
const DELETE_CHUNK = 50_000;
const RECENT_MS = 5 * 60_000;
const COMPACT_EVERY_MS = 24 * HOUR_MS;

export const keyOf = (ms: number): number => Math.floor(ms) * KEY_SCALE;
export const timeOfKey = (key: number): number => Math.floor(key / KEY_SCALE);
export const hourOf = (ms: number): number => Math.floor(ms / HOUR_MS);

export interface StoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  retentionMs: number;
  maxBytes: number;
  catalog: VendorCatalog;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS str (id INTEGER PRIMARY KEY, s TEXT NOT NULL UNIQUE);
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
CREATE TABLE IF NOT EXISTS roll_outcome (hour INTEGER NOT NULL, outcome INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (hour, outcome)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS roll_client (
  hour INTEGER NOT NULL, client INTEGER NOT NULL, n INTEGER NOT NULL, blocked INTEGER NOT NULL, answered INTEGER NOT NULL, last INTEGER NOT NULL,
  PRIMARY KEY (hour, client)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS roll_vendor (
  hour INTEGER NOT NULL, vendor INTEGER NOT NULL, n INTEGER NOT NULL, blocked INTEGER NOT NULL, answered INTEGER NOT NULL,
  PRIMARY KEY (hour, vendor)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS roll_device (
  hour INTEGER NOT NULL, client INTEGER NOT NULL, vendor INTEGER NOT NULL, blocked INTEGER NOT NULL, answered INTEGER NOT NULL,
  PRIMARY KEY (hour, client, vendor)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS name_roll (hour INTEGER NOT NULL, name INTEGER NOT NULL, n INTEGER NOT NULL, blocked INTEGER NOT NULL, PRIMARY KEY (hour, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS block_roll (hour INTEGER NOT NULL, name INTEGER NOT NULL, n INTEGER NOT NULL, reason INTEGER NOT NULL, PRIMARY KEY (hour, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rule_roll (hour INTEGER NOT NULL, rule INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (hour, rule)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS list_roll (hour INTEGER NOT NULL, list INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (hour, list)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reason_meta (reason INTEGER PRIMARY KEY, rule INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reason_list (reason INTEGER NOT NULL, list INTEGER NOT NULL, PRIMARY KEY (reason, list)) WITHOUT ROWID;
`;

const ROLL_TABLES = ['roll_outcome', 'roll_client', 'roll_vendor', 'roll_device', 'name_roll', 'block_roll', 'rule_roll', 'list_roll'] as const;

// SQL fragments over q rows and roll-up rows. The hour of a row is its key / HOUR_KEYS.
const HOUR_KEYS = KEY_SCALE * HOUR_MS;
const OUT = 'flags & 7';
const IS_BLOCKED = `${OUT} = ${OUTCOME_CODE.blocked}`;
const IS_ANSWERED = `${OUT} NOT IN (${OUTCOME_CODE.refused}, ${OUTCOME_CODE.servfail})`;
const IN_BATCH = 'id BETWEEN ? AND ?';

/**
 * Roll-ups of one batch, computed by SQLite from the rows just inserted (the pages are still in
 * its cache) and added to the hourly tables. Each table is a projection of hour × client × vendor
 * × outcome (plus names, rules and lists) shaped for one question, so a read touches a few
 * thousand small rows.
 */
const ROLLUP_SQL = [
  `INSERT INTO roll_outcome (hour, outcome, n) SELECT id / ${HOUR_KEYS}, ${OUT}, count(*) FROM q WHERE ${IN_BATCH} GROUP BY 1, 2
   ON CONFLICT (hour, outcome) DO UPDATE SET n = n + excluded.n`,
  `INSERT INTO roll_client (hour, client, n, blocked, answered, last)
   SELECT id / ${HOUR_KEYS}, client, count(*), sum(${IS_BLOCKED}), sum(${IS_ANSWERED}), max(id) FROM q WHERE ${IN_BATCH} GROUP BY 1, 2
   ON CONFLICT (hour, client) DO UPDATE SET n = n + excluded.n, blocked = blocked + excluded.blocked, answered = answered + excluded.answered, last = max(last, excluded.last)`,
  `INSERT INTO roll_vendor (hour, vendor, n, blocked, answered)
   SELECT id / ${HOUR_KEYS}, vendor, count(*), sum(${IS_BLOCKED}), sum(${IS_ANSWERED}) FROM q WHERE ${IN_BATCH} AND vendor IS NOT NULL GROUP BY 1, 2
   ON CONFLICT (hour, vendor) DO UPDATE SET n = n + excluded.n, blocked = blocked + excluded.blocked, answered = answered + excluded.answered`,
  `INSERT INTO roll_device (hour, client, vendor, blocked, answered)
   SELECT id / ${HOUR_KEYS}, client, vendor, sum(${IS_BLOCKED}), sum(${IS_ANSWERED}) FROM q WHERE ${IN_BATCH} AND vendor IS NOT NULL GROUP BY 1, 2, 3
   ON CONFLICT (hour, client, vendor) DO UPDATE SET blocked = blocked + excluded.blocked, answered = answered + excluded.answered`,
  `INSERT INTO name_roll (hour, name, n, blocked)
   SELECT id / ${HOUR_KEYS}, name, count(*), sum(${IS_BLOCKED}) FROM q WHERE ${IN_BATCH} GROUP BY 1, 2
   ON CONFLICT (hour, name) DO UPDATE SET n = n + excluded.n, blocked = blocked + excluded.blocked`,
  `INSERT INTO block_roll (hour, name, n, reason)
   SELECT id / ${HOUR_KEYS}, name, count(*), max(reason) FROM q WHERE ${IN_BATCH} AND ${IS_BLOCKED} AND reason IS NOT NULL GROUP BY 1, 2
   ON CONFLICT (hour, name) DO UPDATE SET n = n + excluded.n, reason = excluded.reason`,
  `INSERT INTO rule_roll (hour, rule, n)
   SELECT q.id / ${HOUR_KEYS}, m.rule, count(*) FROM q JOIN reason_meta m ON m.reason = q.reason WHERE q.${IN_BATCH} AND q.${IS_BLOCKED} GROUP BY 1, 2
   ON CONFLICT (hour, rule) DO UPDATE SET n = n + excluded.n`,
  `INSERT INTO list_roll (hour, list, n)
   SELECT q.id / ${HOUR_KEYS}, l.list, count(*) FROM q JOIN reason_list l ON l.reason = q.reason WHERE q.${IN_BATCH} AND q.${IS_BLOCKED} GROUP BY 1, 2
   ON CONFLICT (hour, list) DO UPDATE SET n = n + excluded.n`,
];

type Stmt = Database.Statement;

export class QueryLogStore implements ReadApi {
  readonly path: string;
  /** Set when an unreadable file was moved aside at open: where it went. */
  readonly setAside: string | null;
  private readonly db: Database.Database;
  private readonly catalog: VendorCatalog;
  private readonly retentionMs: number;
  private readonly maxBytes: number;
  // Session id (from the recorder) → str id, its text, and the vendor str id of that name (-1: not looked up yet, 0: none).
  private sessionDb: number[] = [];
  private sessionText: string[] = [];
  private sessionVendor: number[] = [];
  private readonly knownReasons = new Set<number>();
  private lastKey: number;
  private rowCount: number;
  private lastCompact = Date.now();
  private readonly rollups: Stmt[];
  private readonly s: Record<'insert' | 'strGet' | 'strAdd' | 'strText' | 'metaAdd' | 'listAdd' | 'metaRule' | 'metaLists' | 'deleteBefore' | 'keyAtOffset' | 'oldest' | 'newest', Stmt>;

  private constructor(path: string, db: Database.Database, opts: StoreOptions, setAside: string | null) {
    this.path = path;
    this.db = db;
    this.setAside = setAside;
    this.catalog = opts.catalog;
    this.retentionMs = opts.retentionMs;
    this.maxBytes = opts.maxBytes;
    this.s = {
      insert: db.prepare('INSERT INTO q (id, client, name, qtype, flags, rcode, vendor, reason, upstream, us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      strGet: db.prepare('SELECT id FROM str WHERE s = ?').pluck(),
      strAdd: db.prepare('INSERT INTO str (s) VALUES (?)'),
      strText: db.prepare('SELECT s FROM str WHERE id = ?').pluck(),
      metaAdd: db.prepare('INSERT OR IGNORE INTO reason_meta (reason, rule) VALUES (?, ?)'),
      listAdd: db.prepare('INSERT OR IGNORE INTO reason_list (reason, list) VALUES (?, ?)'),
      metaRule: db.prepare('SELECT rule FROM reason_meta WHERE reason = ?').pluck(),
      metaLists: db.prepare('SELECT s FROM reason_list JOIN str ON str.id = reason_list.list WHERE reason = ? ORDER BY s').pluck(),
      deleteBefore: db.prepare('DELETE FROM q WHERE id < ?'),
      keyAtOffset: db.prepare('SELECT id FROM q ORDER BY id LIMIT 1 OFFSET ?').pluck(),
      oldest: db.prepare('SELECT min(id) FROM q').pluck(),
      newest: db.prepare('SELECT max(id) FROM q').pluck(),
    };
    this.rollups = ROLLUP_SQL.map((sql) => db.prepare(sql));
    this.lastKey = (this.s.newest.get() as number | null) ?? 0;
    this.rowCount = db.prepare('SELECT count(*) FROM q').pluck().get() as number;
  }

  /**
   * Opens (or creates) the log. A file SQLite cannot read, or one written by a newer hushdns, is
   * renamed aside (`querylog.sqlite.unreadable-<time>`) and a new log started: losing history is
   * better than losing the log.
   */
  static open(opts: StoreOptions): QueryLogStore {
    const memory = opts.path === ':memory:';
    try {
      return QueryLogStore.openOnce(opts, null);
    } catch (err) {
      if (memory || !existsSync(opts.path)) throw err;
      const aside = `${opts.path}.unreadable-${Date.now()}`;
      renameSync(opts.path, aside);
      for (const suffix of ['-wal', '-shm']) if (existsSync(opts.path + suffix)) renameSync(opts.path + suffix, aside + suffix);
      return QueryLogStore.openOnce(opts, aside);
    }
  }

  private static openOnce(opts: StoreOptions, setAside: string | null): QueryLogStore {
    const db = new Database(opts.path);
    try {
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > STORE_VERSION) throw new Error(`${opts.path} has query-log version ${version}; this hushdns writes version ${STORE_VERSION}`);
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
    if (b.strings.reset) {
      this.sessionDb = [];
      this.sessionText = [];
      this.sessionVendor = [];
    }
    const run = this.db.transaction(() => {
      const texts = b.strings.texts;
      for (let j = 0; j < texts.length; j++) {
        const sid = b.strings.base + j;
        this.sessionDb[sid] = this.strId(texts[j]);
        this.sessionText[sid] = texts[j];
        this.sessionVendor[sid] = -1;
      }
      for (const r of b.reasons) this.noteReason(this.sessionDb[r.reason], r.rule, r.lists);
      if (b.n === 0) return;
      const sess = this.sessionDb;
      const insert = this.s.insert;
      const first = this.nextKey(b.time[0]);
      let key = first;
      for (let i = 0; i < b.n; i++) {
        if (i > 0) key = this.nextKey(b.time[i]);
        const vendor = b.vendor[i] >= 0 ? sess[b.vendor[i]] : this.vendorOfName(b.name[i]);
        insert.run(key, sess[b.client[i]], sess[b.name[i]], b.qtype[i], b.flags[i], b.rcode[i], vendor === 0 ? null : vendor, b.reason[i] >= 0 ? sess[b.reason[i]] : null, b.upstream[i] >= 0 ? sess[b.upstream[i]] : null, b.us[i]);
      }
      for (const stmt of this.rollups) stmt.run(first, key);
    });
    run();
    this.rowCount += b.n;
    return { rows: b.n, ms: performance.now() - started };
  }

  private nextKey(ms: number): number {
    let key = Math.floor(ms) * KEY_SCALE;
    if (key <= this.lastKey) key = this.lastKey + 1;
    this.lastKey = key;
    return key;
  }

  /** Retention by age, then by size; hands freed space back when the file is over its cap. */
  maintain(now = Date.now()): MaintainResult {
    const started = performance.now();
    let deletedRows = 0;
    let deletedHours = 0;
    const cutoff = now - this.retentionMs;
    deletedRows += this.deleteRowsBefore(keyOf(cutoff));
    for (const table of ROLL_TABLES) deletedHours += this.db.prepare(`DELETE FROM ${table} WHERE hour < ?`).run(hourOf(cutoff)).changes > 0 ? 1 : 0;
    // Over the size cap: drop the oldest hour of raw rows at a time (roll-ups are small and stay
    // for the whole retention), down to 90% so the next write does not start over.
    const target = this.maxBytes * 0.9;
    for (let guard = 0; guard < 100_000 && this.usedBytes() > target; guard++) {
      const oldest = this.s.oldest.get() as number | null;
      if (oldest !== null) {
        deletedRows += this.deleteRowsBefore(keyOf((hourOf(timeOfKey(oldest)) + 1) * HOUR_MS));
        continue;
      }
      const hour = this.db.prepare(`SELECT min(h) FROM (${ROLL_TABLES.map((t) => `SELECT min(hour) AS h FROM ${t}`).join(' UNION ALL ')})`).pluck().get() as number | null;
      if (hour === null) break;
      for (const table of ROLL_TABLES) this.db.prepare(`DELETE FROM ${table} WHERE hour <= ?`).run(hour);
      deletedHours++;
    }
    if (deletedRows > 0 && Date.now() - this.lastCompact >= COMPACT_EVERY_MS) this.compactStrings();
    if (this.fileBytes() > this.maxBytes) {
      this.db.pragma('incremental_vacuum');
      if (this.path !== ':memory:') this.db.pragma('wal_checkpoint(TRUNCATE)');
    }
    return { deletedRows, deletedHours, bytes: this.fileBytes(), ms: performance.now() - started };
  }

  /** Strings no row or roll-up refers to any more (names seen last week, gone clients). Scans the log: run rarely. */
  compactStrings(): number {
    this.lastCompact = Date.now();
    const run = this.db.transaction(() => {
      this.db.exec('CREATE TEMP TABLE IF NOT EXISTS keep (id INTEGER PRIMARY KEY)');
      this.db.exec('DELETE FROM temp.keep');
      const add = this.db.prepare('INSERT OR IGNORE INTO temp.keep VALUES (?)');
      for (const id of this.sessionDb) if (id !== undefined) add.run(id);
      this.db.exec(`
        INSERT OR IGNORE INTO temp.keep
          SELECT client FROM q UNION SELECT name FROM q UNION SELECT vendor FROM q WHERE vendor IS NOT NULL
          UNION SELECT reason FROM q WHERE reason IS NOT NULL UNION SELECT upstream FROM q WHERE upstream IS NOT NULL
          UNION SELECT client FROM roll_client UNION SELECT vendor FROM roll_vendor UNION SELECT client FROM roll_device UNION SELECT vendor FROM roll_device
          UNION SELECT name FROM name_roll UNION SELECT name FROM block_roll UNION SELECT reason FROM block_roll
          UNION SELECT rule FROM rule_roll UNION SELECT list FROM list_roll`);
      // A kept reason keeps its rule and lists.
      this.db.exec('INSERT OR IGNORE INTO temp.keep SELECT rule FROM reason_meta WHERE reason IN (SELECT id FROM temp.keep)');
      this.db.exec('INSERT OR IGNORE INTO temp.keep SELECT list FROM reason_list WHERE reason IN (SELECT id FROM temp.keep)');
      const gone = this.db.prepare('DELETE FROM str WHERE id NOT IN (SELECT id FROM temp.keep)').run().changes;
      this.db.exec('DELETE FROM reason_meta WHERE reason NOT IN (SELECT id FROM str)');
      this.db.exec('DELETE FROM reason_list WHERE reason NOT IN (SELECT id FROM str)');
      return gone;
    });
    const gone = run();
    this.knownReasons.clear();
    return gone;
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
    const byOutcome: Summary['byOutcome'] = {};
    let total = 0;
    for (const [outcome, n] of this.db.prepare('SELECT outcome, sum(n) FROM roll_outcome WHERE hour >= ? AND hour < ? GROUP BY outcome').raw().all(h0, h1) as [number, number][]) {
      byOutcome[OUTCOMES[outcome] ?? 'servfail'] = n;
      total += n;
    }
    const blocked = byOutcome.blocked ?? 0;
    const perHour = new Map<number, { b: number; a: number }>();
    const seriesSql = `SELECT hour, sum(CASE WHEN outcome = ${OUTCOME_CODE.blocked} THEN n ELSE 0 END), sum(CASE WHEN outcome IN (${OUTCOME_CODE.refused}, ${OUTCOME_CODE.servfail}) THEN 0 ELSE n END) FROM roll_outcome WHERE hour >= ? AND hour < ? GROUP BY hour`;
    for (const [hour, b, a] of this.db.prepare(seriesSql).raw().all(h0, h1) as [number, number, number][]) perHour.set(hour, { b, a });
    const series: Summary['series'] = [];
    for (let h = h0; h < h1; h++) {
      const v = perHour.get(h);
      series.push({ hour: h * HOUR_MS, blocked: v?.b ?? 0, allowed: v ? v.a - v.b : 0 });
    }
    const clients = this.db.prepare('SELECT count(DISTINCT client) FROM roll_client WHERE hour >= ? AND hour < ?').pluck().get(h0, h1) as number;
    const topVendors = this.vendorCounts(h0, h1, args.topVendors);
    const recentSince = Math.max(args.until - RECENT_MS, args.since);
    const recent = this.db.prepare('SELECT count(*) FROM q WHERE id >= ? AND id < ?').pluck().get(keyOf(recentSince), keyOf(args.until)) as number;
    const windowMinutes = Math.max(1, (Math.min(args.until, Date.now()) - args.since) / 60_000);
    return {
      window: { since: h0 * HOUR_MS, until: h1 * HOUR_MS },
      total,
      blocked,
      allowed: total - blocked - (byOutcome.refused ?? 0) - (byOutcome.servfail ?? 0),
      byOutcome,
      clients,
      recentPerMinute: round1(recent / Math.max(1, (args.until - recentSince) / 60_000)),
      averagePerMinute: round1(total / windowMinutes),
      topVendors,
      series,
    };
  }

  devices(args: Window): DeviceCounts[] {
    const [h0, h1] = hours(args);
    const byClient = new Map<number, DeviceCounts>();
    const totals = this.db.prepare('SELECT client, sum(n), sum(blocked), sum(answered), max(last) FROM roll_client WHERE hour >= ? AND hour < ? GROUP BY client').raw().all(h0, h1) as [number, number, number, number, number][];
    for (const [client, n, blocked, answered, last] of totals) {
      byClient.set(client, { client: this.text(client) ?? `#${client}`, total: n, blocked, allowed: answered - blocked, lastSeen: timeOfKey(last), vendors: [] });
    }
    const matrix = this.db.prepare('SELECT client, vendor, sum(blocked), sum(answered) FROM roll_device WHERE hour >= ? AND hour < ? GROUP BY client, vendor').raw().all(h0, h1) as [number, number, number, number][];
    const vendorText = new Map<number, string>();
    for (const [client, vendor, blocked, answered] of matrix) {
      const d = byClient.get(client);
      if (!d) continue;
      let v = vendorText.get(vendor);
      if (v === undefined) vendorText.set(vendor, (v = this.text(vendor) ?? `#${vendor}`));
      d.vendors.push({ vendor: v, blocked, allowed: answered - blocked });
    }
    const out = [...byClient.values()];
    for (const d of out) d.vendors.sort((a, b) => b.blocked + b.allowed - (a.blocked + a.allowed));
    return out.sort((a, b) => b.total - a.total);
  }

  top(args: TopArgs): TopEntry[] {
    const [h0, h1] = hours(args);
    const limit = args.limit;
    switch (args.kind) {
      case 'blocked': {
        // The reason of the newest hour a name was blocked in: as answered (a CNAME block names
        // the target the rule matched), with the lists behind it.
        const rows = this.db
          .prepare('SELECT name, sum(n), reason, max(hour) FROM block_roll WHERE hour >= ? AND hour < ? GROUP BY name ORDER BY sum(n) DESC LIMIT ?')
          .raw()
          .all(h0, h1, limit) as [number, number, number, number][];
        return rows.map(([name, n, reason]) => ({ key: this.text(name) ?? `#${name}`, count: n, blocked: n, rule: this.text(reason), lists: this.s.metaLists.all(reason) as string[] }));
      }
      case 'queried': {
        const rows = this.db.prepare('SELECT name, sum(n), sum(blocked) FROM name_roll WHERE hour >= ? AND hour < ? GROUP BY name ORDER BY sum(n) DESC LIMIT ?').raw().all(h0, h1, limit) as [number, number, number][];
        return rows.map(([name, n, blocked]) => ({ key: this.text(name) ?? `#${name}`, count: n, blocked }));
      }
      case 'clients': {
        const rows = this.db.prepare('SELECT client, sum(n), sum(blocked) FROM roll_client WHERE hour >= ? AND hour < ? GROUP BY client ORDER BY sum(n) DESC LIMIT ?').raw().all(h0, h1, limit) as [number, number, number][];
        return rows.map(([id, n, blocked]) => ({ key: this.text(id) ?? `#${id}`, count: n, blocked }));
      }
      case 'vendors':
        return this.vendorCounts(h0, h1, limit).map((v) => ({ key: v.vendor, count: v.blocked + v.allowed, blocked: v.blocked }));
      case 'lists':
      case 'rules': {
        const table = args.kind === 'lists' ? 'list_roll' : 'rule_roll';
        const col = args.kind === 'lists' ? 'list' : 'rule';
        const rows = this.db.prepare(`SELECT ${col}, sum(n) FROM ${table} WHERE hour >= ? AND hour < ? GROUP BY ${col} ORDER BY sum(n) DESC LIMIT ?`).raw().all(h0, h1, limit) as [number, number][];
        return rows.map(([id, n]) => ({ key: this.text(id) ?? `#${id}`, count: n, blocked: n }));
      }
    }
  }

  page(args: PageArgs): Page {
    const lo = keyOf(args.since);
    let hi = keyOf(args.until);
    if (args.cursor !== null && args.cursor < hi) hi = args.cursor;
    const none: Page = { rows: [], next: null, partial: false };
    if (hi <= lo) return none;
    const where: string[] = ['q.id >= ?', 'q.id < ?'];
    const params: unknown[] = [];
    for (const [field, value] of [
      ['client', args.client],
      ['vendor', args.vendor],
    ] as const) {
      if (!value) continue;
      const id = this.s.strGet.get(value) as number | undefined;
      if (id === undefined) return none;
      where.push(`q.${field} = ?`);
      params.push(id);
    }
    if (args.name) {
      const ids = this.db.prepare('SELECT id FROM str WHERE instr(s, ?) > 0 LIMIT 5000').pluck().all(args.name) as number[];
      if (ids.length === 0) return none;
      where.push(`q.name IN (${ids.join(',')})`);
    }
    if (args.outcomes && args.outcomes.length > 0) where.push(`(q.flags & 7) IN (${args.outcomes.map((o) => o | 0).join(',')})`);
    // A filtered page looks at no more than PAGE_SCAN_ROWS rows: a rare match among millions
    // answers in bounded time with a cursor to go on from, instead of holding the writer for seconds.
    const filtered = params.length > 0 || where.length > 2;
    const bound = filtered ? (this.db.prepare('SELECT id FROM q WHERE id < ? AND id >= ? ORDER BY id DESC LIMIT 1 OFFSET ?').pluck().get(hi, lo, PAGE_SCAN_ROWS) as number | undefined) : undefined;
    const scanLo = bound === undefined ? lo : bound + 1;
    const raw = this.db
      .prepare(
        `SELECT q.id, c.s, n.s, q.qtype, q.flags, q.rcode, r.s, v.s, u.s, q.us FROM q
         JOIN str c ON c.id = q.client JOIN str n ON n.id = q.name
         LEFT JOIN str r ON r.id = q.reason LEFT JOIN str v ON v.id = q.vendor LEFT JOIN str u ON u.id = q.upstream
         WHERE ${where.join(' AND ')} ORDER BY q.id DESC LIMIT ?`,
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
    const [h0, h1] = hours(args);
    const rows = this.db.prepare('SELECT list, sum(n), sum(CASE WHEN hour >= ? AND hour < ? THEN n ELSE 0 END) FROM list_roll GROUP BY list').raw().all(h0, h1) as [number, number, number][];
    return rows.map(([id, total, window]) => ({ list: this.text(id) ?? `#${id}`, total, window }));
  }

  size(_args?: Record<string, never>): StoreSize {
    const oldest = this.s.oldest.get() as number | null;
    return { bytes: this.fileBytes(), rows: this.rowCount, oldest: oldest === null ? null : timeOfKey(oldest) };
  }

  // ---- helpers -----------------------------------------------------------------------------

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

  private strId(text: string): number {
    const id = this.s.strGet.get(text) as number | undefined;
    if (id !== undefined) return id;
    return Number(this.s.strAdd.run(text).lastInsertRowid);
  }

  private text(id: number): string | null {
    return (this.s.strText.get(id) as string | undefined) ?? null;
  }

  /** The vendor (str id, 0 for none) of a session's name, looked up once per distinct name. */
  private vendorOfName(sid: number): number {
    const known = this.sessionVendor[sid];
    if (known !== undefined && known >= 0) return known;
    const v = this.catalog.vendorOf(this.sessionText[sid] ?? '');
    const id = v ? this.strId(v.id) : 0;
    this.sessionVendor[sid] = id;
    return id;
  }

  /** Which rule and lists a block reason stands for: written once, read by the rule and list roll-ups. */
  private noteReason(reason: number, rule: string, lists: string[]): void {
    if (this.knownReasons.has(reason)) return;
    this.knownReasons.add(reason);
    this.s.metaAdd.run(reason, this.strId(rule));
    for (const l of lists) this.s.listAdd.run(reason, this.strId(l));
  }

  private vendorCounts(h0: number, h1: number, limit: number): VendorCount[] {
    const rows = this.db.prepare('SELECT vendor, sum(blocked), sum(answered) FROM roll_vendor WHERE hour >= ? AND hour < ? GROUP BY vendor ORDER BY sum(n) DESC LIMIT ?').raw().all(h0, h1, limit) as [number, number, number][];
    return rows.map(([id, blocked, answered]) => ({ vendor: this.text(id) ?? `#${id}`, blocked, allowed: answered - blocked }));
  }
}

function hours(w: Window): [number, number] {
  return [hourOf(w.since), hourOf(Math.max(w.since, w.until - 1)) + 1];
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
