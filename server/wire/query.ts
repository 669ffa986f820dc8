// Parse an incoming request on the hot path: header, the one question, and the OPT RR. Never
// throws: every input ends as an accepted query, an answerable error, or a silent drop.
import { CLASSIC_UDP_SIZE, FLAG, HEADER_SIZE, OPCODE, RCODE, TYPE } from './constants.js';
import { nameErrorText, takeName, walkName } from './name.js';

export interface Edns {
  /** Requester's UDP payload size; values below 512 are raised to 512 (RFC 6891 §6.2.5). */
  udpSize: number;
  version: number;
  dnssecOk: boolean;
}

export interface ParsedQuery {
  id: number;
  /** The request's 16-bit flags word as received. */
  flags: number;
  opcode: number;
  rd: boolean;
  cd: boolean;
  ad: boolean;
  /** Lowercase presentation form, no trailing dot, '' for the root; see name.ts for the escapes. */
  name: string;
  qtype: number;
  qclass: number;
  /** Offset just past QCLASS in the raw message: responses copy msg[12, questionEnd) verbatim. */
  questionEnd: number;
  edns: Edns | null;
}

export type QueryParse =
  | { ok: true; query: ParsedQuery }
  /** Never answer: shorter than a header, or QR=1 (answering responses invites loops and reflection). */
  | { ok: false; drop: true; reason: string }
  /**
   * Answerable: FORMERR, NOTIMP (header copied, no question), BADVERS. `query` is present when the
   * question itself parsed, so the response can echo it (and, for BADVERS, carry an OPT).
   */
  | { ok: false; drop: false; rcode: number; reason: string; id: number; flags: number; query?: ParsedQuery };

function drop(reason: string): QueryParse {
  return { ok: false, drop: true, reason };
}

function fail(rcode: number, reason: string, id: number, flags: number, query?: ParsedQuery): QueryParse {
  return query ? { ok: false, drop: false, rcode, reason, id, flags, query } : { ok: false, drop: false, rcode, reason, id, flags };
}

// Skip one RR starting at `pos`; returns the offset past it or -1 when it does not fit.
function skipRr(msg: Buffer, pos: number): number {
  const p = walkName(msg, pos, msg.length, false);
  if (p < 0 || p + 10 > msg.length) return -1;
  const end = p + 10 + msg.readUInt16BE(p + 8);
  return end > msg.length ? -1 : end;
}

/** Parse a request datagram/TCP message into a ParsedQuery, or say why it must be answered with an error or dropped. */
export function parseQuery(msg: Buffer): QueryParse {
  const len = msg.length;
  if (len < HEADER_SIZE) return drop(`message is ${len} octets, shorter than a DNS header`);
  const id = (msg[0] << 8) | msg[1];
  const flags = (msg[2] << 8) | msg[3];
  if ((flags & FLAG.QR) !== 0) return drop('QR=1: a response, not a query');
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== OPCODE.QUERY) return fail(RCODE.NOTIMP, `opcode ${opcode} is not implemented`, id, flags);
  const qdcount = (msg[4] << 8) | msg[5];
  if (qdcount !== 1) return fail(RCODE.FORMERR, `QDCOUNT is ${qdcount}, expected 1`, id, flags);

  const nameEnd = walkName(msg, HEADER_SIZE, len, true);
  if (nameEnd < 0) return fail(RCODE.FORMERR, `question: ${nameErrorText(nameEnd)}`, id, flags);
  if (nameEnd + 4 > len) return fail(RCODE.FORMERR, 'question: QTYPE/QCLASS truncated', id, flags);
  const query: ParsedQuery = {
    id,
    flags,
    opcode,
    rd: (flags & FLAG.RD) !== 0,
    cd: (flags & FLAG.CD) !== 0,
    ad: (flags & FLAG.AD) !== 0,
    name: takeName(),
    qtype: (msg[nameEnd] << 8) | msg[nameEnd + 1],
    qclass: (msg[nameEnd + 2] << 8) | msg[nameEnd + 3],
    questionEnd: nameEnd + 4,
    edns: null,
  };

  const ancount = (msg[6] << 8) | msg[7];
  const nscount = (msg[8] << 8) | msg[9];
  const arcount = (msg[10] << 8) | msg[11];
  // Answer/authority RRs are walked only to reach the OPT: without an additional section they are
  // never looked at (the common no-EDNS case costs nothing more).
  if (arcount === 0) return { ok: true, query };

  // Answer and authority RRs in a query are unusual but legal; step over them to reach the OPT.
  let pos = query.questionEnd;
  const skip = ancount + nscount;
  for (let i = 0; i < skip; i++) {
    pos = skipRr(msg, pos);
    if (pos < 0) return fail(RCODE.FORMERR, `${i < ancount ? 'answer' : 'authority'} RR ${i < ancount ? i : i - ancount} is malformed or truncated`, id, flags, query);
  }
  let optTtl = -1;
  let optClass = 0;
  for (let i = 0; i < arcount; i++) {
    const start = pos;
    const p = walkName(msg, pos, len, false);
    if (p < 0 || p + 10 > len) return fail(RCODE.FORMERR, `additional RR ${i} is malformed or truncated`, id, flags, query);
    const rdlen = msg.readUInt16BE(p + 8);
    const end = p + 10 + rdlen;
    if (end > len) return fail(RCODE.FORMERR, `additional RR ${i} RDATA runs past the end of the message`, id, flags, query);
    if (msg.readUInt16BE(p) === TYPE.OPT) {
      if (optTtl >= 0) return fail(RCODE.FORMERR, 'more than one OPT RR (RFC 6891 §6.1.1)', id, flags, query);
      if (p !== start + 1) return fail(RCODE.FORMERR, 'OPT RR owner is not the root', id, flags, query);
      // Options must tile RDATA exactly: code(2) length(2) data.
      let o = p + 10;
      while (o < end) {
        if (o + 4 > end || o + 4 + msg.readUInt16BE(o + 2) > end) return fail(RCODE.FORMERR, 'OPT RR option overruns RDATA', id, flags, query);
        o += 4 + msg.readUInt16BE(o + 2);
      }
      optClass = msg.readUInt16BE(p + 2);
      optTtl = msg.readUInt32BE(p + 4);
    }
    pos = end;
  }
  if (optTtl < 0) return { ok: true, query };

  const version = (optTtl >>> 16) & 0xff;
  query.edns = {
    udpSize: optClass < CLASSIC_UDP_SIZE ? CLASSIC_UDP_SIZE : optClass,
    version,
    dnssecOk: (optTtl & 0x8000) !== 0,
  };
  if (version > 0) return fail(RCODE.BADVERS, `EDNS version ${version} is not supported`, id, flags, query);
  return { ok: true, query };
}
