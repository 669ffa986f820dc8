// Queries per minute over the last five minutes, from counters kept on the DNS thread: one
// increment per query into a ring of minute slots, no SQL and no scan of the log.

const SLOTS = 8;
const MINUTE_MS = 60_000;
const WINDOW_MINUTES = 5;

export class MinuteRate {
  private readonly slots = new Float64Array(SLOTS);
  private minute = -1;

  constructor(private readonly startedAt: number = Date.now()) {}

  /** Hot path: one query (or `count`) at `now` (epoch ms). */
  tick(now: number, count = 1): void {
    const m = Math.floor(now / MINUTE_MS);
    if (m !== this.minute) this.advance(m);
    this.slots[m % SLOTS] += count;
  }

  /** Queries per minute over the five minutes before `now` (less when started more recently). */
  perMinute(now = Date.now()): number {
    const m = Math.floor(now / MINUTE_MS);
    if (m !== this.minute) this.advance(m);
    const part = (now % MINUTE_MS) / MINUTE_MS;
    // The current minute so far, the four before it whole, and the part of the fifth still inside.
    let sum = this.slots[m % SLOTS] + this.slots[(m - WINDOW_MINUTES + SLOTS) % SLOTS] * (1 - part);
    for (let k = 1; k < WINDOW_MINUTES; k++) sum += this.slots[(m - k + SLOTS) % SLOTS];
    const minutes = Math.min(WINDOW_MINUTES, Math.max(1 / 60, (now - this.startedAt) / MINUTE_MS));
    return Math.round((sum / minutes) * 10) / 10;
  }

  /** Clears the slots of minutes that passed without queries (time may also step back). */
  private advance(m: number): void {
    if (this.minute < 0 || m < this.minute || m - this.minute >= SLOTS) this.slots.fill(0);
    else for (let k = this.minute + 1; k <= m; k++) this.slots[k % SLOTS] = 0;
    this.minute = m;
  }
}
