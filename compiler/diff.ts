// What changed between the table a compile wrote and the one it replaced (blocklist.prev.sqlite):
// names added and removed in total and per source. Sources are matched by name across builds; a
// source is credited with a name when the name's row lists it (for either action), so a name a
// parent rule now covers (compressed away) counts as removed for its list. Both counts cost a pass
// over each table, so they are bounded: totals up to DIFF_MAX_RULES, per list up to
// SOURCE_DIFF_MAX_RULES (about a fifth of a second each at the bound).
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { Meta, SCHEMA_VERSION } from '../common/schema.js';

/** Tables above this size get no added/removed counts at all (an anti-join: ~0.5 s per million rows). */
export const DIFF_MAX_RULES = 300_000;
/** Tables above this size get totals only (a full join grouped by source lists: ~2 s per million rows). */
const SOURCE_DIFF_MAX_RULES = 100_000;

export interface SourceDiff {
  added: number;
  removed: number;
}

export type TableDiff =
  | { counted: true; added: number; removed: number; bySource: Map<string, SourceDiff> | null; why: string | null }
  /** `why`: another schema, too big or unreadable; null when there was no previous table to compare with. */
  | { counted: false; why: string | null };

const n = (x: number) => x.toLocaleString('en-US');

export function diffTables(livePath: string, prevPath: string, limits = { total: DIFF_MAX_RULES, bySource: SOURCE_DIFF_MAX_RULES }): TableDiff {
  if (!existsSync(prevPath)) return { counted: false, why: null };
  let db: Database.Database | null = null;
  try {
    db = new Database(livePath, { readonly: true, fileMustExist: true });
    db.prepare('ATTACH DATABASE ? AS prev').run(prevPath);
    if (db.pragma('prev.user_version', { simple: true }) !== SCHEMA_VERSION) return { counted: false, why: 'the previous build has another schema' };
    const rules = (schema: string) => Number(db!.prepare(`SELECT value FROM ${schema}.meta WHERE key = ?`).pluck().get(Meta.Rules));
    const largest = Math.max(rules('main'), rules('prev'));
    if (!(largest <= limits.total)) return { counted: false, why: `not counted above ${n(limits.total)} rules (${n(largest)} here)` };
    if (largest <= limits.bySource) return bySource(db);
    const added = db.prepare('SELECT count(*) FROM main.rule n WHERE NOT EXISTS (SELECT 1 FROM prev.rule p WHERE p.key = n.key)').pluck().get() as number;
    // Every name is either new or shared, so the names gone follow from the counts.
    return { counted: true, added, removed: rules('prev') - (rules('main') - added), bySource: null, why: `not counted per list above ${n(limits.bySource)} rules (${n(largest)} here)` };
  } catch (err) {
    return { counted: false, why: `the previous build could not be read (${(err as Error).message})` };
  } finally {
    db?.close();
  }
}

type ChangedRows = [nowBlock: string | null, nowAllow: string | null, prevBlock: string | null, prevAllow: string | null, count: number];

/** One full join, grouped by the source lists of the rows that changed: few groups, tallied in JS by source name. */
function bySource(db: Database.Database): TableDiff {
  const names = (schema: string) => new Map((db.prepare(`SELECT id, name FROM ${schema}.source`).raw().all() as [number, string][]).map(([id, name]) => [String(id), name]));
  const nowNames = names('main');
  const prevNames = names('prev');
  const sourcesOf = (lists: (string | null)[], names: Map<string, string>): string[] => {
    const out: string[] = [];
    for (const list of lists) {
      if (list === null) continue;
      for (const id of list.split(',')) {
        const name = names.get(id) ?? `source#${id}`;
        if (!out.includes(name)) out.push(name);
      }
    }
    return out;
  };
  // A row that is in one table only has NULL lists on the other side, and lists are never empty.
  const groups = db
    .prepare(
      `SELECT n.block_sources, n.allow_sources, p.block_sources, p.allow_sources, count(*)
       FROM main.rule n FULL JOIN prev.rule p ON p.key = n.key
       WHERE n.key IS NULL OR p.key IS NULL OR n.block_sources IS NOT p.block_sources OR n.allow_sources IS NOT p.allow_sources
       GROUP BY 1, 2, 3, 4`,
    )
    .raw()
    .all() as ChangedRows[];
  const tally = new Map<string, SourceDiff>();
  const of = (name: string): SourceDiff => {
    let d = tally.get(name);
    if (!d) tally.set(name, (d = { added: 0, removed: 0 }));
    return d;
  };
  let added = 0;
  let removed = 0;
  for (const [nowBlock, nowAllow, prevBlock, prevAllow, count] of groups) {
    const is = sourcesOf([nowBlock, nowAllow], nowNames);
    const was = sourcesOf([prevBlock, prevAllow], prevNames);
    if (was.length === 0) added += count;
    if (is.length === 0) removed += count;
    for (const s of is) if (!was.includes(s)) of(s).added += count;
    for (const s of was) if (!is.includes(s)) of(s).removed += count;
  }
  return { counted: true, added, removed, bySource: tally, why: null };
}
