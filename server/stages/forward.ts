// Forward (terminal): ask the upstreams. Identical questions in flight share one upstream
// exchange (fewer upstream queries, and no window for a birthday-style spoofing race).
import type { Answer, Handler, Query } from '../pipeline/types.js';
import { buildUpstreamQuery, renderUpstreamAnswer } from '../upstream-answer.js';
import { inspectResponse, questionMatches, stripOpt, type ResponseInfo } from '../wire/message.js';

/** The part of an upstream pool the forward stage needs. */
export interface Exchanger {
  exchange(query: Buffer): Promise<{ response: Buffer; upstream: string; ms: number }>;
}

interface Upstreamed {
  body: Buffer;
  info: ResponseInfo;
  upstream: string;
}

export class UpstreamGarbageError extends Error {
  readonly code = 'bad-response';
}

export function forwardStage(pool: Exchanger): Handler {
  const inFlight = new Map<string, Promise<Upstreamed>>();

  const ask = async (query: Query): Promise<Upstreamed> => {
    const sent = buildUpstreamQuery(query);
    const res = await pool.exchange(sent);
    const info = inspectResponse(res.response);
    if (!info) throw new UpstreamGarbageError(`unreadable answer from ${res.upstream}`);
    // Every client's question bytes are later copied over this body's question, so it must be our
    // question, uncompressed and of the same length: the transports check the question too, but a
    // hostile upstream must never get to decide which bytes we send to clients.
    if (!questionMatches(res.response, info, sent, query.q.questionEnd)) {
      throw new UpstreamGarbageError(`answer from ${res.upstream} does not repeat the question for ${query.q.name}`);
    }
    if (info.optStart < 0) return { body: res.response, info, upstream: res.upstream };
    const body = stripOpt(res.response, info);
    const bodyInfo = inspectResponse(body);
    if (!bodyInfo) throw new UpstreamGarbageError(`unreadable answer from ${res.upstream}`);
    bodyInfo.rcode = info.rcode; // the extended rcode bits lived in the OPT we removed
    return { body, info: bodyInfo, upstream: res.upstream };
  };

  return (query: Query): Promise<Answer> => {
    const q = query.q;
    const key = `${q.name}|${q.qtype}|${q.qclass}|${q.edns?.dnssecOk ? 1 : 0}|${q.cd ? 1 : 0}`;
    let pending = inFlight.get(key);
    if (!pending) {
      pending = ask(query).finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    return pending.then((u) => ({
      wire: renderUpstreamAnswer(u.body, u.info.ttlOffsets, u.info.rcode, query, 0),
      outcome: 'forwarded',
      reason: `upstream ${u.upstream}`,
      rcode: u.info.rcode,
      upstream: u.upstream,
      upstreamBody: u.body,
      upstreamInfo: u.info,
      cnames: u.info.cnameTargets,
    }));
  };
}
