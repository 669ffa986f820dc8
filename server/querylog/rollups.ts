// The query log's roll-ups: each family is one table per tier (hourly `h_<name>`, daily
// `d_<name>`) whose SQL is generated from one definition here, so the batch upsert, the hourly →
// daily fold, the rebuild of a day cut by retention and the reads can never disagree on a
// column or on how it merges.
//
// Why two tiers: a 7-day window over hourly rows reads 168 hours × (names, or clients × vendors ×
// outcomes); the daily tier answers the whole days of a window with 7 rows per key instead of
// 168, and the hourly tier only the hours the daily rows cannot (the window's first partial day,
// the hour being written). A closed hour is folded into its day once, when the next hour's first
// batch arrives (keys are monotonic, so no row of a closed hour can still come).
import { OUTCOME_CODE } from './codes.js';

export const HOURS_PER_DAY = 24;

type Merge = 'sum' | 'max' | 'latest';

interface Value {
  col: string;
  /** Over the batch's q rows (aliases: q, m = reason_meta, l = reason_list). */
  expr: string;
  merge: Merge;
}

export interface Family {
  name: string;
  /** Summed in memory while the batch's rows are inserted (batch-rollup.ts), not by SQL over them. */
  inMemory?: boolean;
  keys: { col: string; expr: string }[];
  values: Value[];
  /** FROM/JOIN clause over q and extra WHERE condition for the batch upsert. */
  from: string;
  where?: string;
  /** False: hourly only (tiny tables read hour by hour). */
  daily: boolean;
}

const OUT = 'q.flags & 7';
const IS_BLOCKED = `(${OUT}) = ${OUTCOME_CODE.blocked}`;

/** Action codes of reason_meta. */
export const ACTION_BLOCK = 0;
export const ACTION_ALLOW = 1;

/** What a rule or a list decided: the hits of the `rule` and `list` roll-ups, blocks and allows apart. */
const HIT_VALUES: Value[] = [
  { col: 'blocked', expr: `sum(m.action = ${ACTION_BLOCK})`, merge: 'sum' },
  { col: 'allowed', expr: `sum(m.action = ${ACTION_ALLOW})`, merge: 'sum' },
];

/**
 * hour × client × vendor × outcome (the issue's roll-up) and the projections that must not read
 * it: the per-hour outcome series (the chart, totals), names (top queried), blocked names with
 * the reason that blocked them, and the rules and lists that decided, blocks and allows apart.
 */
export const FAMILIES = {
  series: { name: 'series', inMemory: true, keys: [{ col: 'outcome', expr: OUT }], values: [{ col: 'n', expr: 'count(*)', merge: 'sum' }], from: 'q', daily: false },
  cube: {
    name: 'cube',
    inMemory: true,
    keys: [
      { col: 'client', expr: 'q.client' },
      // 0: the query named no vendor (0 is never a str id).
      { col: 'vendor', expr: 'coalesce(q.vendor, 0)' },
      { col: 'outcome', expr: OUT },
    ],
    values: [
      { col: 'n', expr: 'count(*)', merge: 'sum' },
      { col: 'last', expr: 'max(q.id)', merge: 'max' },
    ],
    from: 'q',
    daily: true,
  },
  name: {
    name: 'name',
    inMemory: true,
    keys: [{ col: 'name', expr: 'q.name' }],
    values: [
      { col: 'n', expr: 'count(*)', merge: 'sum' },
      { col: 'blocked', expr: `sum(${IS_BLOCKED})`, merge: 'sum' },
    ],
    from: 'q',
    daily: true,
  },
  block: {
    name: 'block',
    keys: [{ col: 'name', expr: 'q.name' }],
    values: [
      { col: 'n', expr: 'count(*)', merge: 'sum' },
      // As answered (a CNAME block names the target the rule matched): the newest one.
      { col: 'reason', expr: 'q.reason', merge: 'latest' },
    ],
    from: 'q',
    where: `${IS_BLOCKED} AND q.reason IS NOT NULL`,
    daily: true,
  },
  rule: {
    name: 'rule',
    keys: [{ col: 'rule', expr: 'm.rule' }],
    values: HIT_VALUES,
    from: 'q JOIN reason_meta m ON m.reason = q.reason',
    daily: true,
  },
  list: {
    name: 'list',
    keys: [{ col: 'list', expr: 'l.list' }],
    values: HIT_VALUES,
    from: 'q JOIN reason_meta m ON m.reason = q.reason JOIN reason_list l ON l.reason = q.reason',
    daily: true,
  },
} as const satisfies Record<string, Family>;

export const FAMILY_LIST: readonly Family[] = Object.values(FAMILIES);

for (const f of FAMILY_LIST) {
  // SQLite takes a bare column's value from the row of the one max() in the query: a 'latest'
  // value needs that max() to be the time order, so a family cannot also have a 'max' value.
  if (f.values.some((v) => v.merge === 'latest') && f.values.some((v) => v.merge === 'max')) throw new Error(`roll-up ${f.name}: 'latest' and 'max' values cannot be mixed`);
}

const hourTable = (f: Family): string => `h_${f.name}`;
export const dayTable = (f: Family): string => `d_${f.name}`;

const keyCols = (f: Family) => f.keys.map((k) => k.col);
const valueCols = (f: Family) => f.values.map((v) => v.col);
const hasLatest = (f: Family) => f.values.some((v) => v.merge === 'latest');

function onConflict(f: Family, bucket: string): string {
  const set = f.values.map((v) => (v.merge === 'sum' ? `${v.col} = ${v.col} + excluded.${v.col}` : v.merge === 'max' ? `${v.col} = max(${v.col}, excluded.${v.col})` : `${v.col} = excluded.${v.col}`));
  return `ON CONFLICT (${[bucket, ...keyCols(f)].join(', ')}) DO UPDATE SET ${set.join(', ')}`;
}

/** How values of already grouped rows combine (fold, rebuild, reads). */
function reAggregate(v: Value): string {
  return v.merge === 'sum' ? `sum(${v.col})` : v.merge === 'max' ? `max(${v.col})` : v.col;
}

export function schemaSql(f: Family): string {
  const cols = [...keyCols(f), ...valueCols(f)].map((c) => `${c} INTEGER NOT NULL`).join(', ');
  const tables = [`CREATE TABLE IF NOT EXISTS ${hourTable(f)} (hour INTEGER NOT NULL, ${cols}, PRIMARY KEY (hour, ${keyCols(f).join(', ')})) WITHOUT ROWID;`];
  if (f.daily) tables.push(`CREATE TABLE IF NOT EXISTS ${dayTable(f)} (day INTEGER NOT NULL, ${cols}, PRIMARY KEY (day, ${keyCols(f).join(', ')})) WITHOUT ROWID;`);
  return tables.join('\n');
}

/** Adds the rows with keys in [first, last] (one batch; two parameters) to the hourly table. */
export function batchSql(f: Family, hourKeys: number): string {
  const select = [`q.id / ${hourKeys}`, ...f.keys.map((k) => k.expr), ...f.values.map((v) => v.expr)];
  const groupBy = select.slice(0, 1 + f.keys.length).map((_, i) => i + 1);
  const where = `q.id BETWEEN ? AND ?${f.where ? ` AND ${f.where}` : ''}`;
  const cols = ['hour', ...keyCols(f), ...valueCols(f)];
  let inner = `SELECT ${select.join(', ')} FROM ${f.from} WHERE ${where} GROUP BY ${groupBy.join(', ')}`;
  if (hasLatest(f)) inner = `SELECT ${cols.map((_, i) => `c${i}`).join(', ')} FROM (SELECT ${select.map((e, i) => `${e} AS c${i}`).join(', ')}, max(q.id) FROM ${f.from} WHERE ${where} GROUP BY ${groupBy.join(', ')}) WHERE true`;
  return `INSERT INTO ${hourTable(f)} (${cols.join(', ')}) ${inner} ${onConflict(f, 'hour')}`;
}

/** Adds one already summed hourly row (hour, keys…, values…) to the hourly table. */
export function upsertSql(f: Family): string {
  const cols = ['hour', ...keyCols(f), ...valueCols(f)];
  return `INSERT INTO ${hourTable(f)} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')}) ${onConflict(f, 'hour')}`;
}

/** Adds the hourly rows of hours [from, to) (two parameters) to their days, merging into what the days hold. */
export function foldSql(f: Family): string {
  const cols = ['day', ...keyCols(f), ...valueCols(f)];
  const select = [`hour / ${HOURS_PER_DAY}`, ...keyCols(f), ...f.values.map(reAggregate)];
  const latest = hasLatest(f) ? ', max(hour)' : '';
  const inner = `SELECT ${select.map((e, i) => `${e} AS c${i}`).join(', ')}${latest} FROM ${hourTable(f)} WHERE hour >= ? AND hour < ? GROUP BY ${[1, ...f.keys.map((_, i) => i + 2)].join(', ')}`;
  return `INSERT INTO ${dayTable(f)} (${cols.join(', ')}) SELECT ${cols.map((_, i) => `c${i}`).join(', ')} FROM (${inner}) WHERE true ${onConflict(f, 'day')}`;
}

export function deleteHoursSql(f: Family): string {
  return `DELETE FROM ${hourTable(f)} WHERE hour < ?`;
}

export function deleteDaysSql(f: Family): string {
  return `DELETE FROM ${dayTable(f)} WHERE day < ?`;
}

export function deleteDaySql(f: Family): string {
  return `DELETE FROM ${dayTable(f)} WHERE day = ?`;
}

/** Which daily buckets and which hour ranges answer a window of hours: days + ranges − minus. */
export interface TierPlan {
  days: number[];
  ranges: [number, number][];
  /** Hours a used day's bucket holds outside the window: subtracted (sums only; see tierSource). */
  minus: [number, number][];
}

/** What reading a day's bucket costs, in hours of hourly rows (a day holds ~2.5× an hour's keys). */
const DAY_COST_HOURS = 3;

export interface TierState {
  /** The oldest hour any roll-up holds (retention and the size cap move it). */
  floor: number;
  /** Hours below this are folded into their days. */
  folded: number;
  /** The newest hour written, or null when the log is empty. */
  newest: number | null;
}

/**
 * A window [h0, h1) of hours as daily buckets and hourly ranges, whichever reads fewer rows. A
 * day's bucket holds hours [max(day start, floor), min(day end, folded)); used for a day the
 * window covers in part, the hours it holds outside the window are subtracted (a 24-hour window
 * reads yesterday's bucket minus its first hours instead of most of yesterday hour by hour).
 */
export function planWindow(h0: number, h1: number, st: TierState): TierPlan {
  const plan: TierPlan = { days: [], ranges: [], minus: [] };
  if (st.newest === null) return plan;
  const lo = Math.max(h0, st.floor);
  const hi = Math.min(h1, st.newest + 1);
  if (lo >= hi) return plan;
  const push = (to: [number, number][], a: number, b: number) => {
    if (a >= b) return;
    const last = to[to.length - 1];
    if (last && last[1] === a) last[1] = b;
    else to.push([a, b]);
  };
  for (let d = Math.floor(lo / HOURS_PER_DAY); d <= Math.floor((hi - 1) / HOURS_PER_DAY); d++) {
    const dayLo = d * HOURS_PER_DAY;
    const dayHi = dayLo + HOURS_PER_DAY;
    const partLo = Math.max(dayLo, lo);
    const partHi = Math.min(dayHi, hi);
    const spanLo = Math.max(dayLo, st.floor);
    const spanHi = Math.min(dayHi, st.folded);
    if (spanLo < spanHi) {
      // With the bucket: the window's hours it lacks (not folded yet) added, its hours outside the window subtracted.
      const addLo = Math.max(spanHi, partLo);
      const before = Math.max(0, Math.min(partLo, spanHi) - spanLo);
      const after = Math.max(0, spanHi - Math.max(partHi, spanLo));
      if (DAY_COST_HOURS + Math.max(0, partHi - addLo) + before + after < partHi - partLo) {
        plan.days.push(d);
        push(plan.ranges, addLo, partHi);
        push(plan.minus, spanLo, Math.min(partLo, spanHi));
        push(plan.minus, Math.max(partHi, spanLo), spanHi);
        continue;
      }
    }
    push(plan.ranges, partLo, partHi);
  }
  return plan;
}

/**
 * A subquery over both tiers with the family's key and value columns plus `t`, an hour that
 * orders rows in time (for 'latest' values), and its parameters. Subtracted hours come as rows
 * with negated sums and NULL for 'max' and 'latest' values and `t` (max() skips them), so a
 * reader must drop groups whose sums come to zero: a key seen only in the subtracted hours.
 */
export function tierSource(f: Family, plan: TierPlan): { sql: string; params: number[] } {
  const cols = [...keyCols(f), ...valueCols(f)].join(', ');
  const negated = [...keyCols(f), ...f.values.map((v) => `${v.merge === 'sum' ? `-${v.col}` : 'NULL'} AS ${v.col}`)].join(', ');
  const parts: string[] = [];
  const params: number[] = [];
  for (const [a, b] of plan.minus) {
    parts.push(`SELECT ${negated}, NULL AS t FROM ${hourTable(f)} WHERE hour >= ? AND hour < ?`);
    params.push(a, b);
  }
  if (plan.days.length > 0) {
    if (!f.daily) throw new Error(`roll-up ${f.name} has no daily tier`);
    parts.push(`SELECT ${cols}, day * ${HOURS_PER_DAY} + ${HOURS_PER_DAY - 1} AS t FROM ${dayTable(f)} WHERE day IN (${plan.days.map(() => '?').join(', ')})`);
    params.push(...plan.days);
  }
  for (const [a, b] of plan.ranges) {
    parts.push(`SELECT ${cols}, hour AS t FROM ${hourTable(f)} WHERE hour >= ? AND hour < ?`);
    params.push(a, b);
  }
  // An empty plan still has to be a valid subquery with these columns.
  if (parts.length === 0) parts.push(`SELECT ${cols}, hour AS t FROM ${hourTable(f)} WHERE 0`);
  return { sql: parts.join(' UNION ALL '), params };
}
