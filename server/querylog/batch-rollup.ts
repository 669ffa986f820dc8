// The high-volume roll-ups of a batch (outcome series, client × vendor × outcome, names), summed
// in memory while its rows are inserted: a few Map lookups per row instead of SQLite sorting the
// batch's rows again for each table (that cost ~1.7 µs a row; this ~0.2). One upsert per group.
import type Database from 'better-sqlite3';
import { OUTCOME_CODE } from './codes.js';

const OUTCOMES = 8;
const BLOCKED = OUTCOME_CODE.blocked;

/** Per client and vendor: n per outcome, then the newest row key per outcome. */
type Cell = Float64Array;
/**
 * Per name: n * NAME_SHIFT + blocked, one number. A batch can bring hundreds of thousands of new
 * names; a typed array each would be as many small native allocations, which the writer thread's
 * malloc arena keeps long after the batch is gone.
 */
const NAME_SHIFT = 2 ** 24;

export class BatchRollup {
  /** hour → client → vendor (0: none) → cell. */
  private readonly cube = new Map<number, Map<number, Map<number, Cell>>>();
  /** hour → name → packed counts. */
  private readonly names = new Map<number, Map<number, number>>();
  private hour = -1;
  private cubeHour: Map<number, Map<number, Cell>> | null = null;
  private namesHour: Map<number, number> | null = null;

  /** Hot loop: one inserted row. */
  add(hour: number, key: number, client: number, vendor: number, outcome: number, name: number): void {
    if (hour !== this.hour) this.enter(hour);
    let byVendor = this.cubeHour!.get(client);
    if (!byVendor) this.cubeHour!.set(client, (byVendor = new Map()));
    let cell = byVendor.get(vendor);
    if (!cell) byVendor.set(vendor, (cell = new Float64Array(2 * OUTCOMES)));
    cell[outcome]++;
    cell[OUTCOMES + outcome] = key;
    this.namesHour!.set(name, (this.namesHour!.get(name) ?? 0) + NAME_SHIFT + (outcome === BLOCKED ? 1 : 0));
  }

  /** Upserts every group: series (hour, outcome, n), cube (hour, client, vendor, outcome, n, last), name (hour, name, n, blocked). */
  flush(upsert: { series: Database.Statement; cube: Database.Statement; name: Database.Statement }): void {
    for (const [hour, byClient] of this.cube) {
      const series = new Float64Array(OUTCOMES);
      for (const [client, byVendor] of byClient) {
        for (const [vendor, cell] of byVendor) {
          for (let o = 0; o < OUTCOMES; o++) {
            if (cell[o] === 0) continue;
            series[o] += cell[o];
            upsert.cube.run(hour, client, vendor, o, cell[o], cell[OUTCOMES + o]);
          }
        }
      }
      for (let o = 0; o < OUTCOMES; o++) if (series[o] > 0) upsert.series.run(hour, o, series[o]);
    }
    for (const [hour, byName] of this.names) {
      for (const [name, packed] of byName) {
        const blocked = packed % NAME_SHIFT;
        upsert.name.run(hour, name, (packed - blocked) / NAME_SHIFT, blocked);
      }
    }
    this.clear();
  }

  clear(): void {
    this.cube.clear();
    this.names.clear();
    this.hour = -1;
    this.cubeHour = null;
    this.namesHour = null;
  }

  private enter(hour: number): void {
    this.hour = hour;
    let c = this.cube.get(hour);
    if (!c) this.cube.set(hour, (c = new Map()));
    let n = this.names.get(hour);
    if (!n) this.names.set(hour, (n = new Map()));
    this.cubeHour = c;
    this.namesHour = n;
  }
}
