// Failed queries (SERVFAIL from the chain) in the log without a line per query: during an internet
// outage every query fails, and a line each would flood stderr and wear out a Raspberry Pi's SD
// card. The first failure after a quiet spell is logged at once (it is the news); later ones are
// counted and summed up at most once per interval with the count and the last error. A spell ends
// when a whole interval passes without a failure.
import type { Logger } from '../../common/log.js';
import type { Query } from './types.js';

export const FAILURE_SUMMARY_INTERVAL_MS = 60_000;

export class FailureLog {
  private suppressed = 0;
  private last: { name: string; type: number; err: unknown } | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = FAILURE_SUMMARY_INTERVAL_MS,
  ) {}

  failed(query: Query, err: unknown): void {
    if (this.timer === null) {
      this.log.warn('query failed', { name: query.q.name, type: query.q.qtype, err });
      this.startWindow();
      return;
    }
    this.suppressed++;
    this.last = { name: query.q.name, type: query.q.qtype, err };
  }

  /** Writes the pending summary now (at shutdown) and stops the timer. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.summarise();
  }

  private startWindow(): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      // Failures kept coming: report them and keep holding back; a quiet interval ends the spell.
      if (this.summarise()) this.startWindow();
    }, this.intervalMs);
    this.timer.unref();
  }

  private summarise(): boolean {
    if (this.suppressed === 0 || this.last === null) return false;
    const { name, type, err } = this.last;
    this.log.warn('queries failed', { count: this.suppressed, intervalSeconds: Math.round(this.intervalMs / 1000), lastName: name, lastType: type, err });
    this.suppressed = 0;
    this.last = null;
    return true;
  }
}
