// What changed between the table a compile wrote and the one it replaced (blocklist.prev.sqlite):
// names added and removed in total and per source. Sources are matched by name across builds;
// a source is credited with a name when the name's row lists it (for either action), so a name a
// parent rule now covers (compressed away) counts as removed for its list. One merge pass over
// both tables in key order, in JS: bounded by DIFF_MAX_RULES so a big compile does not pay for it.
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { Meta, SCHEMA_VERSION } from '../common/schema.js';

/** Tables above this size get no added/removed counts (about 0.5 s per million rows of each table). */
export const DIFF_MAX_RULES = 300_000;

export interface SourceDiff {
  added: number;
  removed: number;
}

export type TableDiff =
  | { counted: true; added: number; removed: number; bySource: Map<string, SourceDiff> }
  /** `why`: another schema, too big or unreadable; null when there was no previous table to compare with. */
  | { counted: false; why: string | null };

type Row = [key: string, blockSources: string | null, allowSources: string | null];

export function diffTables(livePath: string, prevPath: string, maxRules = DIFF_MAX_RULES): TableDiff {
  if (!existsSync(prevPath)) return { counted: false, why: null };
  let now: Database.Database | null = null;
  let before: Database.Database | null = null;
  try {
    now = new Database(livePath, { readonly: true, fileMustExist: true });
    before = new Database(prevPath, { readonly: true, fileMustExist: true });
    if (before.pragma('user_version', { simple: true }) !== SCHEMA_VERSION) return { counted: false, why: 'the previous build has another schema' };
    const rules = (db: Database.Database) => Number(db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(Meta.Rules));
    const sizes = [rules(now), rules(before)];
    if (sizes.some((n) => !(n <= maxRules))) {
      return { counted: false, why: `not counted above ${maxRules.toLocaleString('en-US')} rules (this build ${sizes[0].toLocaleString('en-US')}, the last ${sizes[1].toLocaleString('en-US')})` };
    }
    return mergeJoin(now, before);
  } catch (err) {
    return { counted: false, why: `the previous build could not be read (${(err as Error).message})` };
  } finally {
    now?.close();
    before?.close();
  }
}

function mergeJoin(now: Database.Database, before: Database.Database): TableDiff {
  const nameOf = (db: Database.Database) => new Map((db.prepare('SELECT id, name FROM source').raw().all() as [number, string][]).map(([id, name]) => [String(id), name]));
  const nowNames = nameOf(now);
  const beforeNames = nameOf(before);
  const bySource = new Map<string, SourceDiff>();
  const tally = (name: string): SourceDiff => {
    let d = bySource.get(name);
    if (!d) bySource.set(name, (d = { added: 0, removed: 0 }));
    return d;
  };
  const sourcesOf = (row: Row, names: Map<string, string>): string[] => {
    const out: string[] = [];
    for (const list of [row[1], row[2]]) {
      if (list === null) continue;
      for (const id of list.split(',')) {
        const name = names.get(id) ?? `source#${id}`;
        if (!out.includes(name)) out.push(name);
      }
    }
    return out;
  };
  const sql = 'SELECT key, block_sources, allow_sources FROM rule ORDER BY key';
  const a = now.prepare(sql).raw().iterate() as IterableIterator<Row>;
  const b = before.prepare(sql).raw().iterate() as IterableIterator<Row>;
  let added = 0;
  let removed = 0;
  let x = a.next();
  let y = b.next();
  // Keys are ASCII tree keys, so JS string order is SQLite's BINARY order.
  while (!x.done || !y.done) {
    if (y.done || (!x.done && x.value[0] < y.value[0])) {
      added++;
      for (const s of sourcesOf(x.value, nowNames)) tally(s).added++;
      x = a.next();
    } else if (x.done || y.value[0] < x.value[0]) {
      removed++;
      for (const s of sourcesOf(y.value, beforeNames)) tally(s).removed++;
      y = b.next();
    } else {
      const was = sourcesOf(y.value, beforeNames);
      const is = sourcesOf(x.value, nowNames);
      for (const s of is) if (!was.includes(s)) tally(s).added++;
      for (const s of was) if (!is.includes(s)) tally(s).removed++;
      x = a.next();
      y = b.next();
    }
  }
  return { counted: true, added, removed, bySource };
}
