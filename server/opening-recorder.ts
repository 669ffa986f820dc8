// The query recorder while the query log opens. Opening it (its writer thread, its SQLite file)
// takes a few hundred ms; DNS does not wait for that. The first queries are held, up to a bound,
// and handed to the log once it is open (their log time is the moment of the handover, at most
// that much later); past the bound they are dropped, as a full log queue would, and their number
// is logged.
import type { Logger } from '../common/log.js';
import type { QueryRecorder } from './dns-plane.js';
import type { Answer, Query } from './pipeline/types.js';

const MAX_HELD = 10_000;

export class OpeningRecorder implements QueryRecorder {
  private target: QueryRecorder | null = null;
  private held: [Query, Answer, number][] = [];
  private dropped = 0;
  /** Settles once the recorder is open (or failed to open, which is logged: DNS goes on unlogged). */
  readonly opened: Promise<void>;

  constructor(opening: Promise<QueryRecorder>, log: Logger) {
    this.opened = opening.then(
      (recorder) => {
        for (const [q, a, ms] of this.held) recorder.record(q, a, ms);
        this.target = recorder;
        this.release();
        if (this.dropped > 0) log.warn('queries answered while the query log opened were not logged', { dropped: this.dropped });
      },
      (err: unknown) => {
        log.error('the query log could not open; DNS answers without it', { err });
        this.target = { record: () => undefined, close: async () => undefined };
        this.release();
      },
    );
  }

  record(query: Query, answer: Answer, ms: number): void {
    if (this.target !== null) this.target.record(query, answer, ms);
    else if (this.held.length < MAX_HELD) this.held.push([query, answer, ms]);
    else this.dropped++;
  }

  async close(): Promise<void> {
    await this.opened;
    await this.target!.close();
  }

  private release(): void {
    this.held = [];
  }
}
