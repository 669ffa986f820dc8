// The query log's strings (names, clients, reasons, vendors, upstreams, rules, lists): each text
// once in `str`, rows hold its id. The recorder on the DNS thread hands out session ids and sends
// each text once; this table maps them to str ids, lazily, so a str row can be dropped and come
// back under a new id without the recorder knowing.
//
// Space is reclaimed without scanning the log: every str row carries `last`, the newest hour a
// row or roll-up refers to it (raised once per string per hour as batches use it). Rows and
// roll-ups at hour h only refer to strings with last >= h, so when the oldest hour kept anywhere
// moves to F, every string with last < F is garbage: one DELETE over `str`.
import type Database from 'better-sqlite3';
import type { VendorCatalog } from '../../common/vendors.js';
import { ACTION_ALLOW, ACTION_BLOCK } from './rollups.js';
import type { BlockReason } from './types.js';

const UNRESOLVED = -1;

export class StringTable {
  /** Session id → str id, or UNRESOLVED. */
  private ids: number[] = [];
  private texts: string[] = [];
  /** Session id → the hour up to which its `last` is known to be raised. */
  private marked: number[] = [];
  /** Session id → what the reason stands for (block and allow reasons). */
  private readonly reasons = new Map<number, BlockReason>();
  /** Session id of a name → str id of its catalog vendor (0: none, UNRESOLVED: not looked up). */
  private vendorOfName: number[] = [];
  /** Str id of a catalog vendor → hour marked. */
  private readonly vendorMarked = new Map<number, number>();
  /**
   * Session strings whose `last` must be raised before the batch commits (once each, to the
   * newest hour the batch used them in), reasons apart: their rule and lists are raised too.
   */
  private pending: number[] = [];
  private pendingReasons: number[] = [];
  /** Session id → the batch it was last queued in (for pending and pendingReasons apart). */
  private queuedIn: number[] = [];
  private reasonQueuedIn: number[] = [];
  private batch = 1;
  /** Str ids inserted in the current batch → the hour they were inserted with. */
  private readonly insertedNow = new Map<number, number>();
  /** Other str ids (catalog vendors, rules, lists) → the hour to raise them to. */
  private readonly pendingIds = new Map<number, number>();
  private readonly s: Record<'get' | 'add' | 'text' | 'raise' | 'raiseReason' | 'metaAdd' | 'listAdd' | 'sweep' | 'sweepMeta' | 'sweepLists', Database.Statement>;

  constructor(
    db: Database.Database,
    private readonly catalog: VendorCatalog,
  ) {
    this.s = {
      get: db.prepare('SELECT id FROM str WHERE s = ?').pluck(),
      add: db.prepare('INSERT INTO str (s, last) VALUES (?, ?)'),
      text: db.prepare('SELECT s FROM str WHERE id = ?').pluck(),
      raise: db.prepare('UPDATE str SET last = @hour WHERE id = @id AND last < @hour'),
      raiseReason: db.prepare('UPDATE str SET last = @hour WHERE last < @hour AND id IN (SELECT rule FROM reason_meta WHERE reason = @id UNION ALL SELECT list FROM reason_list WHERE reason = @id)'),
      metaAdd: db.prepare('INSERT OR IGNORE INTO reason_meta (reason, rule, action) VALUES (?, ?, ?)'),
      listAdd: db.prepare('INSERT OR IGNORE INTO reason_list (reason, list) VALUES (?, ?)'),
      sweep: db.prepare('DELETE FROM str WHERE last < ?'),
      sweepMeta: db.prepare('DELETE FROM reason_meta WHERE reason NOT IN (SELECT id FROM str) OR rule NOT IN (SELECT id FROM str)'),
      sweepLists: db.prepare('DELETE FROM reason_list WHERE reason NOT IN (SELECT reason FROM reason_meta) OR list NOT IN (SELECT id FROM str)'),
    };
  }

  /** The recorder started its table over. */
  resetSession(): void {
    this.ids = [];
    this.texts = [];
    this.marked = [];
    this.vendorOfName = [];
    this.reasons.clear();
  }

  /** Texts and reasons first sent with a batch (before its transaction: they stay known if it fails). */
  learn(base: number, texts: readonly string[], reasons: readonly BlockReason[]): void {
    for (let j = 0; j < texts.length; j++) {
      const sid = base + j;
      this.texts[sid] = texts[j];
      this.ids[sid] = UNRESOLVED;
      this.marked[sid] = -1;
      this.vendorOfName[sid] = UNRESOLVED;
    }
    for (const r of reasons) this.reasons.set(r.reason, r);
  }

  /** Hot loop: the str id of a session string used by a row of hour `hour`. */
  use(sid: number, hour: number): number {
    const id = this.ids[sid];
    if (id >= 0 && this.marked[sid] >= hour) return id;
    return this.slowUse(sid, hour, false);
  }

  /** Like use(), for the reason column: the reason's rule and lists are in use too. */
  useReason(sid: number, hour: number): number {
    const id = this.ids[sid];
    if (id >= 0 && this.marked[sid] >= hour) return id;
    return this.slowUse(sid, hour, true);
  }

  /** The str id of the catalog vendor of a session name (0: none). */
  vendorOf(nameSid: number, hour: number): number {
    let v = this.vendorOfName[nameSid];
    if (v === undefined || v < 0) {
      const found = this.catalog.vendorOf(this.texts[nameSid] ?? '');
      v = found ? this.id(found.id, hour) : 0;
      this.vendorOfName[nameSid] = v;
    }
    if (v > 0 && (this.vendorMarked.get(v) ?? -1) < hour) {
      this.vendorMarked.set(v, hour);
      this.raiseLater(v, hour);
    }
    return v;
  }

  /** Raises `last` of everything used since the last call. Inside the batch's transaction. */
  flushMarks(): void {
    for (const sid of this.pending) this.s.raise.run({ id: this.ids[sid], hour: this.marked[sid] });
    for (const sid of this.pendingReasons) this.s.raiseReason.run({ id: this.ids[sid], hour: this.marked[sid] });
    for (const [id, hour] of this.pendingIds) this.s.raise.run({ id, hour });
    this.clearPending();
  }

  /** A batch's transaction failed: str ids handed out in it may not exist. Resolve everything again. */
  invalidate(): void {
    this.ids.fill(UNRESOLVED);
    this.marked.fill(-1);
    this.vendorOfName.fill(UNRESOLVED);
    this.vendorMarked.clear();
    this.clearPending();
  }

  private clearPending(): void {
    this.insertedNow.clear();
    this.pending = [];
    this.pendingReasons = [];
    this.pendingIds.clear();
    this.batch++;
  }

  private raiseLater(id: number, hour: number): void {
    // Inserted in this batch with this hour or a later one: nothing to raise.
    if ((this.insertedNow.get(id) ?? -1) >= hour) return;
    if ((this.pendingIds.get(id) ?? -1) < hour) this.pendingIds.set(id, hour);
  }

  /**
   * Deletes every string no row or roll-up at hour `floor` or later refers to, and the reason
   * meta of deleted reasons. Session strings that may be among them resolve again on next use.
   */
  sweep(floor: number): number {
    const gone = this.s.sweep.run(floor).changes;
    if (gone === 0) return 0;
    this.s.sweepMeta.run();
    this.s.sweepLists.run();
    for (let sid = 0; sid < this.ids.length; sid++) {
      if (this.marked[sid] < floor) {
        this.ids[sid] = UNRESOLVED;
        this.marked[sid] = -1;
      }
    }
    this.vendorOfName.fill(UNRESOLVED);
    this.vendorMarked.clear();
    return gone;
  }

  /** The str id of a text (inserted when new), its `last` raised to `hour`. */
  id(text: string, hour: number): number {
    return this.resolve(text, hour).id;
  }

  /** Like id(); `fresh` when the text was inserted now (its `last` is `hour` already). */
  private resolve(text: string, hour: number): { id: number; fresh: boolean } {
    const known = this.s.get.get(text) as number | undefined;
    if (known === undefined) {
      const id = Number(this.s.add.run(text, hour).lastInsertRowid);
      this.insertedNow.set(id, hour);
      return { id, fresh: true };
    }
    this.raiseLater(known, hour);
    return { id: known, fresh: false };
  }

  /** The str id of a text, or undefined when it is not in the table (never inserts). */
  find(text: string): number | undefined {
    return this.s.get.get(text) as number | undefined;
  }

  text(id: number): string | null {
    return (this.s.text.get(id) as string | undefined) ?? null;
  }

  private slowUse(sid: number, hour: number, isReason: boolean): number {
    let id = this.ids[sid];
    if (id === undefined) throw new Error(`query-log batch refers to string #${sid}, which the writer was never sent`);
    let fresh = false;
    if (id < 0) {
      ({ id, fresh } = this.resolve(this.texts[sid], hour));
      this.ids[sid] = id;
      const meta = this.reasons.get(sid);
      if (meta) this.noteReason(id, meta, hour);
    }
    this.marked[sid] = hour;
    // A string inserted just now already carries this hour: no UPDATE needed (most of a burst of new names).
    if (!fresh && this.queuedIn[sid] !== this.batch) {
      this.queuedIn[sid] = this.batch;
      this.pending.push(sid);
    }
    if (isReason && !fresh && this.reasonQueuedIn[sid] !== this.batch) {
      this.reasonQueuedIn[sid] = this.batch;
      this.pendingReasons.push(sid);
    }
    return id;
  }

  /** Which rule and lists a reason stands for, and whether it blocked or allowed. */
  private noteReason(reason: number, meta: BlockReason, hour: number): void {
    this.s.metaAdd.run(reason, this.id(meta.rule, hour), meta.action === 'allow' ? ACTION_ALLOW : ACTION_BLOCK);
    for (const l of meta.lists) this.s.listAdd.run(reason, this.id(l, hour));
  }
}
