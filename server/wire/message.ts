// Inspect and adjust responses from upstream servers (cache, poisoning defence, CNAME inspection)
// and build the queries we send them. Upstream bytes are untrusted: every reader here returns null
// on garbage instead of throwing, and every offset it reports is valid in the presence of
// compression.
import { CLASSIC_UDP_SIZE, EDNS_OPTION, FLAG, HEADER_SIZE, TYPE } from './constants.js';
import { beginMessage, encodeName, takeName, walkName } from './name.js';
import type { Ede, Rr } from './response.js';

export interface ResponseInfo {
  id: number;
  flags: number;
  /** Full rcode: header nibble plus the extended bits from the OPT TTL. */
  rcode: number;
  tc: boolean;
  aa: boolean;
  qdcount: number;
  /** Lowercase presentation form ('' with qtype/qclass 0 when QDCOUNT is 0, as in some error responses). */
  qname: string;
  qtype: number;
  qclass: number;
  questionEnd: number;
  ancount: number;
  nscount: number;
  arcount: number;
  /** Byte offset of the TTL field of every RR except OPT, in message order. */
  ttlOffsets: number[];
  /** Minimum TTL over answer+authority RRs (TTLs with the top bit set count as 0, RFC 2181 §8); null when there are none. */
  minTtl: number | null;
  /** min(SOA TTL, SOA MINIMUM) over SOA RRs in authority (RFC 2308 §5); null without one. Meaningful for NXDOMAIN/NODATA. */
  negativeTtl: number | null;
  /** Every CNAME target in the answer section, lowercase presentation form, in order. */
  cnameTargets: string[];
  /** Type of every answer RR, in order (lets callers tell NODATA-behind-a-CNAME from a real answer). */
  answerTypes: number[];
  /** Byte range of the OPT RR; -1 when absent. */
  optStart: number;
  optEnd: number;
  /** Upstream's advertised UDP size and DO bit from its OPT (null/false without one). */
  udpSize: number | null;
  dnssecOk: boolean;
  /** First Extended DNS Error option in the OPT, if any (to pass an upstream's reason along). */
  ede: Ede | null;
  /** Offset past the last RR; trailing octets beyond it are ignored and dropped by stripOpt. */
  messageEnd: number;
}

// RDATA layouts holding names (RFC 3597 §4's compressible types, plus SRV/AFSDB/RT, which some
// senders compress, and the RRSIG signer / NSEC next name, which some encoders compress against):
// offset of the first name (bits 4–11), consecutive names (bits 0–3), fixed octets after them
// (bits 12–19; VARIABLE_TAIL when any number may follow). 0 for every other type.
const VARIABLE_TAIL = 0xff;
function rdataLayout(type: number): number {
  switch (type) {
    case 2: case 3: case 4: case 5: case 7: case 8: case 9: case 12:
      return 0x01; // one name (NS, MD, MF, CNAME, MB, MG, MR, PTR)
    case 6:
      return (20 << 12) | 0x02; // SOA: MNAME RNAME + five 32-bit fields
    case 14: case 17:
      return 0x02; // two names (MINFO, RP)
    case 15: case 18: case 21:
      return (2 << 4) | 0x01; // 16-bit preference, then a name (MX, AFSDB, RT)
    case 33:
      return (6 << 4) | 0x01; // priority, weight, port, then a name (SRV)
    case 46:
      return (VARIABLE_TAIL << 12) | (18 << 4) | 0x01; // RRSIG: 18 fixed octets, signer, signature
    case 47:
      return (VARIABLE_TAIL << 12) | 0x01; // NSEC: next name, type bitmaps
    default:
      return 0;
  }
}

/**
 * Follow an already validated name through every segment, relative to an OPT at
 * [optStart, optEnd): returns -1 if any octet it reads lies inside the OPT; with `out`, rewrites
 * each pointer located after the OPT that targets after it, shifted down by the OPT's length.
 * Returns the offset past the name in place.
 */
function shiftPointers(msg: Buffer, start: number, optStart: number, optEnd: number, out: Buffer | null): number {
  let pos = start;
  let after = -1;
  for (let guard = 0; guard < 512 && pos < msg.length; guard++) {
    if (pos >= optStart && pos < optEnd) return -1;
    const len = msg[pos];
    if (len === 0) return after < 0 ? pos + 1 : after;
    if ((len & 0xc0) === 0xc0) {
      const target = ((len & 0x3f) << 8) | msg[pos + 1];
      if (pos + 1 === optStart || (target >= optStart && target < optEnd)) return -1;
      if (out && pos >= optEnd && target >= optEnd) out.writeUInt16BE(0xc000 | (target - (optEnd - optStart)), pos - (optEnd - optStart));
      if (after < 0) after = pos + 2;
      pos = target;
      continue;
    }
    if (pos < optStart && pos + len >= optStart) return -1; // label runs into the OPT
    pos += len + 1;
  }
  return -1;
}

/** Apply shiftPointers to every name (owners and compressible RDATA names) of the RRs from optEnd on. */
function shiftRrPointers(msg: Buffer, optStart: number, optEnd: number, end: number, out: Buffer | null): boolean {
  let pos = optEnd;
  while (pos < end) {
    const p = shiftPointers(msg, pos, optStart, optEnd, out);
    if (p < 0 || p + 10 > end) return false;
    const rdStart = p + 10;
    const rdEnd = rdStart + msg.readUInt16BE(p + 8);
    const layout = rdataLayout(msg.readUInt16BE(p));
    let n = rdStart + ((layout >> 4) & 0xff);
    for (let k = layout & 0xf; k > 0; k--) {
      n = shiftPointers(msg, n, optStart, optEnd, out);
      if (n < 0) return false;
    }
    pos = rdEnd;
  }
  return true;
}

function normTtl(ttl: number): number {
  return ttl > 0x7fffffff ? 0 : ttl;
}

/** Walk a response once and report what the cache, validator and CNAME inspector need; null for anything malformed. */
export function inspectResponse(msg: Buffer): ResponseInfo | null {
  const len = msg.length;
  if (len < HEADER_SIZE) return null;
  const flags = msg.readUInt16BE(2);
  if ((flags & FLAG.QR) === 0) return null;
  const qdcount = msg.readUInt16BE(4);
  const ancount = msg.readUInt16BE(6);
  const nscount = msg.readUInt16BE(8);
  const arcount = msg.readUInt16BE(10);
  if (qdcount > 1) return null;
  beginMessage();
  let qname = '';
  let qtype = 0;
  let qclass = 0;
  let pos = HEADER_SIZE;
  if (qdcount === 1) {
    const p = walkName(msg, pos, len, true, true);
    if (p < 0 || p + 4 > len) return null;
    qname = takeName();
    qtype = msg.readUInt16BE(p);
    qclass = msg.readUInt16BE(p + 2);
    pos = p + 4;
  }
  const questionEnd = pos;

  const ttlOffsets: number[] = [];
  const cnameTargets: string[] = [];
  const answerTypes: number[] = [];
  let minTtl = -1;
  let negativeTtl = -1;
  let optStart = -1;
  let optEnd = -1;
  let extRcode = 0;
  let udpSize: number | null = null;
  let dnssecOk = false;
  let ede: Ede | null = null;
  const total = ancount + nscount + arcount;
  for (let i = 0; i < total; i++) {
    const start = pos;
    const p = walkName(msg, pos, len, false, true);
    if (p < 0 || p + 10 > len) return null;
    const type = msg.readUInt16BE(p);
    const rdlen = msg.readUInt16BE(p + 8);
    const rdStart = p + 10;
    const rdEnd = rdStart + rdlen;
    if (rdEnd > len) return null;
    const section = i < ancount ? 0 : i < ancount + nscount ? 1 : 2;
    if (type === TYPE.OPT) {
      // One OPT, in additional, owned by the root (RFC 6891 §6.1.1).
      if (section !== 2 || optStart >= 0 || p !== start + 1) return null;
      optStart = start;
      optEnd = rdEnd;
      udpSize = msg.readUInt16BE(p + 2);
      const ttl = msg.readUInt32BE(p + 4);
      extRcode = ttl >>> 24;
      dnssecOk = (ttl & 0x8000) !== 0;
      for (let o = rdStart; o < rdEnd; ) {
        if (o + 4 > rdEnd) return null;
        const code = msg.readUInt16BE(o);
        const olen = msg.readUInt16BE(o + 2);
        if (o + 4 + olen > rdEnd) return null;
        if (code === EDNS_OPTION.EDE && ede === null && olen >= 2) {
          let textEnd = o + 4 + olen;
          while (textEnd > o + 6 && msg[textEnd - 1] === 0) textEnd--; // some senders NUL-terminate (RFC 8914 §2)
          ede = { code: msg.readUInt16BE(o + 4), text: msg.toString('utf8', o + 6, textEnd) };
        }
        o += 4 + olen;
      }
      pos = rdEnd;
      continue;
    }
    const ttl = normTtl(msg.readUInt32BE(p + 4));
    ttlOffsets.push(p + 4);
    if ((type === TYPE.A && rdlen !== 4) || (type === TYPE.AAAA && rdlen !== 16)) return null;
    if (section < 2 && (minTtl < 0 || ttl < minTtl)) minTtl = ttl;
    // Names inside RDATA are walked too: the cache must not keep a record whose target is garbage,
    // and stripOpt relies on every name obeying the pointer rules.
    const layout = rdataLayout(type);
    if (layout !== 0) {
      const cname = section === 0 && type === TYPE.CNAME;
      let n = rdStart + ((layout >> 4) & 0xff);
      for (let k = layout & 0xf; k > 0; k--) {
        n = walkName(msg, n, rdEnd, cname, true);
        if (n < 0) return null;
      }
      const tail = layout >>> 12;
      if (tail === VARIABLE_TAIL ? n > rdEnd : n + tail !== rdEnd) return null;
      if (cname) cnameTargets.push(takeName());
    }
    if (section === 0) {
      answerTypes.push(type);
    } else if (section === 1 && type === TYPE.SOA) {
      const neg = Math.min(ttl, normTtl(msg.readUInt32BE(rdEnd - 4)));
      if (negativeTtl < 0 || neg < negativeTtl) negativeTtl = neg;
    }
    pos = rdEnd;
  }
  // Names after a mid-section OPT must not read any of its octets, or stripOpt could not keep them.
  if (optStart >= 0 && optEnd < pos && !shiftRrPointers(msg, optStart, optEnd, pos, null)) return null;

  return {
    id: msg.readUInt16BE(0),
    flags,
    rcode: (extRcode << 4) | (flags & FLAG.RCODE_MASK),
    tc: (flags & FLAG.TC) !== 0,
    aa: (flags & FLAG.AA) !== 0,
    qdcount,
    qname,
    qtype,
    qclass,
    questionEnd,
    ancount,
    nscount,
    arcount,
    ttlOffsets,
    minTtl: minTtl < 0 ? null : minTtl,
    negativeTtl: negativeTtl < 0 ? null : negativeTtl,
    cnameTargets,
    answerTypes,
    optStart,
    optEnd,
    udpSize,
    dnssecOk,
    ede,
    messageEnd: pos,
  };
}

/**
 * The answer and authority RRs of a response inspectResponse() accepted, with every name
 * (owner and RDATA) decompressed, ready for buildRecords(). Why: records spliced into another
 * message (a local CNAME followed by the answer for its target) cannot keep pointers into the
 * message they came from. Class is assumed IN (buildRecords writes IN). Null on garbage.
 */
export function readRecords(msg: Buffer, info: ResponseInfo): { answers: Rr[]; authority: Rr[] } | null {
  const answers: Rr[] = [];
  const authority: Rr[] = [];
  let pos = info.questionEnd;
  for (let i = 0; i < info.ancount + info.nscount; i++) {
    const p = walkName(msg, pos, msg.length, true);
    if (p < 0 || p + 10 > msg.length) return null;
    const name = takeName();
    const type = msg.readUInt16BE(p);
    const rdStart = p + 10;
    const rdEnd = rdStart + msg.readUInt16BE(p + 8);
    if (rdEnd > msg.length) return null;
    const layout = rdataLayout(type);
    let rdata: Buffer;
    if (layout === 0) {
      rdata = Buffer.from(msg.subarray(rdStart, rdEnd));
    } else {
      const parts: Buffer[] = [msg.subarray(rdStart, rdStart + ((layout >> 4) & 0xff))];
      let n = rdStart + ((layout >> 4) & 0xff);
      for (let k = layout & 0xf; k > 0; k--) {
        n = walkName(msg, n, rdEnd, true);
        if (n < 0) return null;
        parts.push(encodeName(takeName()));
      }
      parts.push(msg.subarray(n, rdEnd));
      rdata = Buffer.concat(parts);
    }
    (i < info.ancount ? answers : authority).push({ name, type, ttl: normTtl(msg.readUInt32BE(p + 4)), rdata });
    pos = rdEnd;
  }
  return { answers, authority };
}

/**
 * Copy of the message without its OPT RR, ARCOUNT decremented, so the cache stores an EDNS-neutral
 * body and addEdnsOpt() can give each client its own OPT. Compression pointers in RRs after a
 * mid-section OPT are shifted to stay valid. Always a fresh buffer (safe to mutate).
 */
export function stripOpt(msg: Buffer, info: ResponseInfo): Buffer {
  if (info.optStart < 0) return Buffer.from(msg.subarray(0, info.messageEnd));
  const shift = info.optEnd - info.optStart;
  const out = Buffer.allocUnsafe(info.messageEnd - shift);
  msg.copy(out, 0, 0, info.optStart);
  msg.copy(out, info.optStart, info.optEnd, info.messageEnd);
  out.writeUInt16BE(info.arcount - 1, 10);
  if (info.optEnd < info.messageEnd) shiftRrPointers(msg, info.optStart, info.optEnd, info.messageEnd, out);
  return out;
}

/** ttlOffsets re-based for stripOpt's output (RRs after a mid-section OPT move up); the same array when nothing moves. */
export function strippedTtlOffsets(info: ResponseInfo): number[] {
  if (info.optStart < 0 || info.optEnd >= info.messageEnd) return info.ttlOffsets;
  const shift = info.optEnd - info.optStart;
  return info.ttlOffsets.map((o) => (o > info.optStart ? o - shift : o));
}

/**
 * Does the response carry exactly the question we asked (name case-insensitively, type and class
 * exactly)? Why: a mismatched question is the mark of a spoofed or misrouted answer (RFC 5452 §9.1).
 */
export function questionMatches(resp: Buffer, info: ResponseInfo, req: Buffer, reqQuestionEnd: number): boolean {
  if (info.qdcount !== 1) return false;
  const n = info.questionEnd - HEADER_SIZE;
  if (n !== reqQuestionEnd - HEADER_SIZE || n < 5 || req.length < reqQuestionEnd || resp.length < info.questionEnd) return false;
  // Name octets compare with ASCII case folded; length octets (≤ 63) are never letters.
  const nameEnd = HEADER_SIZE + n - 4;
  for (let i = HEADER_SIZE; i < nameEnd; i++) {
    const a = resp[i];
    const b = req[i];
    if (a !== b) {
      const la = a | 0x20;
      if (la !== (b | 0x20) || la < 0x61 || la > 0x7a) return false;
    }
  }
  for (let i = nameEnd; i < nameEnd + 4; i++) if (resp[i] !== req[i]) return false;
  return true;
}

/**
 * Age a cached copy in place: every TTL at `offsets` loses `elapsedSeconds` (whole seconds), never
 * going below `floor` (default 0). TTLs with the top bit set are treated as 0 first (RFC 2181 §8).
 */
export function writeTtls(msg: Buffer, offsets: readonly number[], elapsedSeconds: number, floor = 0): void {
  const e = elapsedSeconds > 0 ? Math.floor(elapsedSeconds) : 0;
  const f = floor > 0 ? Math.min(Math.floor(floor), 0x7fffffff) : 0;
  for (let i = 0; i < offsets.length; i++) {
    const o = offsets[i];
    if (o < 0 || o + 4 > msg.length) continue;
    let ttl = normTtl(msg.readUInt32BE(o)) - e;
    if (ttl < f) ttl = f;
    msg.writeUInt32BE(ttl, o);
  }
}

/**
 * A query for upstream servers (and tests): one question with the name's case kept as given (so a
 * 0x20-randomised name goes out as is) and, when udpSize > 0, an OPT with our size and DO bit.
 * Throws RangeError on a name that cannot be encoded.
 */
export function buildQuery(
  id: number,
  name: string,
  qtype: number,
  qclass: number,
  opts: { rd: boolean; cd: boolean; dnssecOk: boolean; udpSize: number; ednsPadding?: never },
): Buffer {
  const qn = encodeName(name);
  const withOpt = opts.udpSize > 0;
  const out = Buffer.allocUnsafe(HEADER_SIZE + qn.length + 4 + (withOpt ? 11 : 0));
  out.writeUInt16BE(id & 0xffff, 0);
  out.writeUInt16BE((opts.rd ? FLAG.RD : 0) | (opts.cd ? FLAG.CD : 0), 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(withOpt ? 1 : 0, 10);
  qn.copy(out, HEADER_SIZE);
  let pos = HEADER_SIZE + qn.length;
  out.writeUInt16BE(qtype & 0xffff, pos);
  out.writeUInt16BE(qclass & 0xffff, pos + 2);
  pos += 4;
  if (withOpt) {
    out[pos] = 0;
    out.writeUInt16BE(TYPE.OPT, pos + 1);
    out.writeUInt16BE(Math.max(CLASSIC_UDP_SIZE, Math.min(opts.udpSize, 0xffff)), pos + 3);
    out.writeUInt32BE(opts.dnssecOk ? 0x8000 : 0, pos + 5);
    out.writeUInt16BE(0, pos + 9);
  }
  return out;
}
