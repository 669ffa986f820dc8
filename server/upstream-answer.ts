// Turning an upstream response body (kept without its OPT record, in the cache or fresh from the
// forward stage) into the answer for one client: its ID, its question bytes (0x20 case), its
// flags, TTLs aged by the time spent in cache, and its own EDNS OPT.
import type { Query } from './pipeline/types.js';
import { RCODE } from './wire/constants.js';
import { addEdnsOpt, type ResponseOptions } from './wire/response.js';
import { writeTtls } from './wire/message.js';

const RD = 0x01;
const CD = 0x10;
const AD = 0x20;
const RA = 0x80;

/**
 * `rcode` is the upstream's full rcode (the body has lost the OPT that carried its extended bits):
 * an EDNS client gets it back whole in our OPT; a client without EDNS cannot be told an extended
 * rcode (RFC 6891 §7 forbids an OPT in the reply), so it gets SERVFAIL rather than the
 * meaningless low four bits.
 *
 * The body must be an answer to this very question (the forward stage checks that): the client's
 * question bytes are copied over the body's, which only works when both are the same length.
 */
export function renderUpstreamAnswer(body: Buffer, ttlOffsets: readonly number[], rcode: number, query: Query, elapsedSeconds: number, opts?: ResponseOptions & { ttlFloor?: number }): Buffer {
  const out = Buffer.allocUnsafe(body.length);
  body.copy(out);
  const q = query.q;
  out.writeUInt16BE(q.id, 0);
  // QR, the request's opcode and RD; AA cleared (we are not the authority); TC from the body.
  out[2] = 0x80 | (q.opcode << 3) | (body[2] & 0x02) | (q.rd ? RD : 0);
  // RA always; AD only when the client can use it (asked with AD or DO, RFC 6840 §5.8); CD echoed.
  const adAllowed = q.ad || (q.edns?.dnssecOk ?? false);
  const nibble = rcode <= 0x0f ? rcode : q.edns ? rcode & 0x0f : RCODE.SERVFAIL;
  out[3] = RA | (adAllowed ? body[3] & AD : 0) | (q.cd ? CD : 0) | nibble;
  msgQuestionCopy(query.msg, q.questionEnd, out);
  if (elapsedSeconds > 0 || opts?.ttlFloor !== undefined) writeTtls(out, ttlOffsets as number[], elapsedSeconds, opts?.ttlFloor);
  return q.edns ? addEdnsOpt(out, q, opts, rcode) : out;
}

function msgQuestionCopy(msg: Buffer, questionEnd: number, out: Buffer): void {
  // The question of the stored body has the same length (same labels); copy the client's bytes.
  msg.copy(out, 12, 12, questionEnd);
}

/**
 * A query for the upstream built from the client's question bytes: RD set, CD passed on, our OPT
 * with the client's DO bit, and AD always set. Why AD: RFC 6840 §5.7, AD=1 in a query says the
 * asker understands AD in the answer, so the upstream tells us when it validated the data. We
 * pass AD on only to clients that asked with AD or DO (renderUpstreamAnswer); asking for it on
 * every query, rather than only when this client did, keeps one upstream exchange and one cache
 * entry usable by every client of the same question.
 */
export function buildUpstreamQuery(query: Query): Buffer {
  const q = query.q;
  const qlen = q.questionEnd - 12;
  const out = Buffer.allocUnsafe(12 + qlen + 11);
  out.writeUInt16BE(0, 0); // the transport sets a fresh random ID
  out[2] = RD;
  out[3] = AD | (q.cd ? CD : 0);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(1, 10);
  query.msg.copy(out, 12, 12, q.questionEnd);
  let o = 12 + qlen;
  out[o++] = 0; // root owner
  out.writeUInt16BE(41, o); // OPT
  out.writeUInt16BE(1232, o + 2);
  out.writeUInt32BE(q.edns?.dnssecOk ? 0x8000 : 0, o + 4); // ext-rcode 0, version 0, DO
  out.writeUInt16BE(0, o + 8);
  return out;
}
