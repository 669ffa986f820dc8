// A bounded map that keeps recently used keys: two generations of plain Maps. Reads look in the
// young one, then the old one (promoting the hit); when the young one is full it becomes the old
// one and the previous old one is dropped whole. Approximately LRU, but a hit costs one Map
// lookup instead of the delete and re-insert a strict LRU on a Map needs, and eviction costs
// nothing per entry. Used on the per-query path, where that difference shows.
export class RecentMap<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  private readonly generation: number;

  /** At most `max` entries are held: two generations of max/2 (below 2, nothing is held). */
  constructor(readonly max: number) {
    this.generation = Math.max(0, Math.floor(max / 2));
  }

  get(key: K): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const o = this.old.get(key);
    if (o !== undefined) this.put(key, o);
    return o;
  }

  set(key: K, value: V): void {
    if (this.generation === 0) return;
    this.put(key, value);
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
  }

  private put(key: K, value: V): void {
    if (this.young.size >= this.generation) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }
}
