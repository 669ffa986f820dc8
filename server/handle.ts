// From bytes to bytes: parse the request, answer protocol errors without entering the chain (but
// only to clients the access gate admits: everyone else gets REFUSED), run the chain with a guard
// (any throw or a handler that never answers becomes SERVFAIL), and fit UDP answers to the
// client's size (TC=1 beyond it).
import { performance } from 'node:perf_hooks';
import type { Answer, Client, Handler, Query } from './pipeline/types.js';
import { isPromise } from './pipeline/types.js';
import { EDE, RCODE } from './wire/constants.js';
import { parseQuery } from './wire/query.js';
import { buildHeaderOnly, buildRcode, buildTruncated } from './wire/response.js';
import type { ClientGate } from './stages/access.js';

export interface Observer {
  /** Every answered query, after the chain (the log and stats stage of DESIGN.md lives here). */
  answered(query: Query, answer: Answer, ms: number): void;
  /** A packet answered or dropped before the chain (malformed, not a query). */
  rejected(protocol: 'udp' | 'tcp', reason: string): void;
  /** A chain failure turned into SERVFAIL. */
  failed(query: Query, err: unknown): void;
}

export interface HandleOptions {
  handler: Handler;
  observer: Observer;
  /** A query not answered within this time gets SERVFAIL. */
  deadlineMs: number;
  /**
   * The access stage's gate, applied here to packets that never reach the chain. Why: without it
   * an outsider learns FORMERR/NOTIMP/BADVERS where everything else it sends gets REFUSED.
   */
  gate?: Pick<ClientGate, 'check'>;
}

const MIN_UDP = 512;
const MAX_UDP = 1232;
const OUTSIDER_REASON = 'client outside allow-clients';

export type PacketHandler = (msg: Buffer, client: Client, protocol: 'udp' | 'tcp') => Buffer | null | Promise<Buffer | null>;

export function createPacketHandler(opts: HandleOptions): PacketHandler {
  const { handler, observer, deadlineMs, gate } = opts;

  const finish = (query: Query, answer: Answer): Buffer => {
    observer.answered(query, answer, performance.now() - query.receivedAt);
    if (query.protocol === 'udp') {
      const limit = query.q.edns ? Math.min(MAX_UDP, Math.max(MIN_UDP, query.q.edns.udpSize)) : MIN_UDP;
      if (answer.wire.length > limit) return buildTruncated(query.msg, query.q);
    }
    return answer.wire;
  };

  const servfail = (query: Query, err: unknown): Buffer => {
    observer.failed(query, err);
    const wire = buildRcode(query.msg, query.q, RCODE.SERVFAIL, { ede: { code: EDE.NetworkError, text: shortMessage(err) } });
    return finish(query, { wire, outcome: 'servfail', reason: shortMessage(err), rcode: RCODE.SERVFAIL });
  };

  return (msg, client, protocol) => {
    const parsed = parseQuery(msg);
    if (!parsed.ok) {
      if (parsed.drop) {
        observer.rejected(protocol, parsed.reason);
        return null;
      }
      const refusal = gate ? gate.check(client.address, protocol) : null;
      // The gate counts rate-limit refusals itself; an outsider is counted here.
      if (refusal === 'outside-allow-clients') observer.rejected(protocol, OUTSIDER_REASON);
      else if (refusal === null) observer.rejected(protocol, parsed.reason);
      // REFUSED echoes at most the question and an OPT, both taken from the query: never larger.
      const rcode = refusal === null ? parsed.rcode : RCODE.REFUSED;
      return parsed.query ? buildRcode(msg, parsed.query, rcode) : buildHeaderOnly(parsed.id, parsed.flags, rcode);
    }
    const query: Query = { msg, q: parsed.query, client, protocol, receivedAt: performance.now() };
    let result: Answer | Promise<Answer>;
    try {
      result = handler(query);
    } catch (err) {
      return servfail(query, err);
    }
    if (!isPromise(result)) return finish(query, result);
    return withDeadline(result, deadlineMs).then(
      (answer) => finish(query, answer),
      (err: unknown) => servfail(query, err),
    );
  };
}

class DeadlineError extends Error {
  readonly code = 'deadline';
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineError(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function shortMessage(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.length > 120 ? `${m.slice(0, 117)}...` : m;
}
