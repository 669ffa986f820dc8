// Build complete responses for a parsed query without dns2: the exact size is computed first,
// then one Buffer.allocUnsafe is filled front to back (every byte written, so no stale memory
// leaks out). The question is copied byte-for-byte from the request, which echoes the client's
// 0x20 case and ID; QR=1, RA=1, opcode/RD/CD copied, AD never set (we do not validate DNSSEC).
// An OPT RR is appended whenever the request had EDNS (RFC 6891 §7) or the rcode needs its
// extended bits.
import { CLASS, CLASSIC_UDP_SIZE, EDE_TEXT_MAX, EDNS_OPTION, EDNS_UDP_SIZE, FLAG, HEADER_SIZE, OPT_DO, TYPE } from './constants.js';
import { encodeName } from './name.js';
import type { ParsedQuery } from './query.js';

export { encodeName };

export interface Ede {
  code: number;
  /** EXTRA-TEXT (UTF-8). Cut to 255 octets; dropped entirely if it would push the response past the requester's UDP limit. */
  text?: string;
}

export interface ResponseOptions {
  ede?: Ede;
  /** Set AA: for names we are the authority for (local records, our own special names). */
  aa?: boolean;
}

export interface SoaTemplate {
  zone: string;
  ttl: number;
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

export interface Rr {
  /** Owner name in presentation form; default: the question name (written as a pointer to it). */
  name?: string;
  type: number;
  ttl: number;
  rdata: Buffer;
}

const QNAME_PTR = 0xc000 | HEADER_SIZE;

/**
 * Largest response worth sending this requester over UDP: 512 without EDNS, else its advertised size
 * clamped to [512, 1232] (no fragmentation). Why: the listener compares a built response against this
 * and sends buildTruncated() instead when it is larger.
 */
export function udpResponseLimit(q: ParsedQuery): number {
  if (!q.edns) return CLASSIC_UDP_SIZE;
  return q.edns.udpSize > EDNS_UDP_SIZE ? EDNS_UDP_SIZE : q.edns.udpSize < CLASSIC_UDP_SIZE ? CLASSIC_UDP_SIZE : q.edns.udpSize;
}

// ---- flags, header, OPT -------------------------------------------------------------------------

function responseFlags(requestFlags: number, rcode: number, aa: boolean, tc: boolean): number {
  return (
    FLAG.QR |
    (requestFlags & FLAG.OPCODE_MASK) |
    (aa ? FLAG.AA : 0) |
    (tc ? FLAG.TC : 0) |
    (requestFlags & FLAG.RD) |
    FLAG.RA |
    (requestFlags & FLAG.CD) |
    (rcode & FLAG.RCODE_MASK)
  );
}

function writeHeader(out: Buffer, id: number, flags: number, qd: number, an: number, ns: number, ar: number): void {
  out[0] = id >>> 8;
  out[1] = id & 0xff;
  out[2] = flags >>> 8;
  out[3] = flags & 0xff;
  out[4] = qd >>> 8;
  out[5] = qd & 0xff;
  out[6] = an >>> 8;
  out[7] = an & 0xff;
  out[8] = ns >>> 8;
  out[9] = ns & 0xff;
  out[10] = ar >>> 8;
  out[11] = ar & 0xff;
}

// The EDE option planned for the response being built. Builders are synchronous, so module state is
// safe and spares an object per response.
let edeCode = -1;
let edeText = '';
let edeTextLen = 0;
let edeAscii = false;

// Block reasons are short ASCII: measuring and writing them in JS skips two native calls per answer.
function isShortAscii(text: string): boolean {
  if (text.length > EDE_TEXT_MAX) return false;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function truncateUtf8(text: string, max: number): string {
  const bytes = Buffer.from(text, 'utf8');
  let cut = max;
  while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--; // never split a character
  return bytes.toString('utf8', 0, cut);
}

/** Size of the OPT RR for this response (0 when none is due) and the EDE plan in module state. */
function planOpt(q: ParsedQuery, rcode: number, opts: ResponseOptions | undefined): number {
  edeCode = -1;
  edeText = '';
  edeTextLen = 0;
  edeAscii = false;
  if (!q.edns && rcode <= 0xf) return 0;
  const ede = opts?.ede;
  // RFC 8914 §3: EDE only for requesters that sent EDNS.
  if (!ede || !q.edns) return 11;
  edeCode = ede.code & 0xffff;
  const text = ede.text;
  if (text) {
    edeText = text;
    edeAscii = isShortAscii(text);
    if (edeAscii) return 11 + 6 + (edeTextLen = text.length);
    edeTextLen = Buffer.byteLength(text, 'utf8');
    if (edeTextLen > EDE_TEXT_MAX) {
      edeText = truncateUtf8(text, EDE_TEXT_MAX);
      edeTextLen = Buffer.byteLength(edeText, 'utf8');
    }
  }
  return 11 + 6 + edeTextLen;
}

/** Drop the EDE text when it alone pushes the response past the requester's limit; returns the new total. */
function fitEde(q: ParsedQuery, total: number): number {
  if (edeTextLen > 0 && total > udpResponseLimit(q)) {
    total -= edeTextLen;
    edeTextLen = 0;
    edeText = '';
    edeAscii = false;
  }
  return total;
}

function writeOpt(out: Buffer, pos: number, q: ParsedQuery, rcode: number): number {
  out[pos] = 0; // root owner
  out.writeUInt16BE(TYPE.OPT, pos + 1);
  out.writeUInt16BE(EDNS_UDP_SIZE, pos + 3);
  // TTL: extended rcode (high 8 of 12 bits) | version 0 | DO echoed (RFC 3225 §3) | Z zero.
  out.writeUInt32BE(((((rcode >>> 4) & 0xff) << 24) | (q.edns?.dnssecOk ? OPT_DO : 0)) >>> 0, pos + 5);
  if (edeCode < 0) {
    out.writeUInt16BE(0, pos + 9);
    return pos + 11;
  }
  out.writeUInt16BE(6 + edeTextLen, pos + 9);
  out.writeUInt16BE(EDNS_OPTION.EDE, pos + 11);
  out.writeUInt16BE(2 + edeTextLen, pos + 13);
  out.writeUInt16BE(edeCode, pos + 15);
  if (edeAscii) {
    for (let i = 0; i < edeTextLen; i++) out[pos + 17 + i] = edeText.charCodeAt(i);
  } else if (edeTextLen > 0) {
    out.write(edeText, pos + 17, edeTextLen, 'utf8');
  }
  return pos + 17 + edeTextLen;
}

function clampTtl(ttl: number): number {
  if (!(ttl > 0)) return 0;
  return ttl >= 0x7fffffff ? 0x7fffffff : Math.floor(ttl);
}

/** Copy octets; a plain loop beats Buffer#copy's native call for the short runs on the hot path. */
function copyBytes(src: Buffer, srcStart: number, srcEnd: number, out: Buffer, at: number): void {
  if (srcEnd - srcStart > 96) {
    src.copy(out, at, srcStart, srcEnd);
    return;
  }
  for (let i = srcStart; i < srcEnd; i++) out[at++] = src[i];
}

/** Header + copied question; returns the offset after the question. */
function startResponse(out: Buffer, msg: Buffer, q: ParsedQuery, rcode: number, aa: boolean, tc: boolean, an: number, ns: number, ar: number): number {
  writeHeader(out, q.id, responseFlags(q.flags, rcode, aa, tc), 1, an, ns, ar);
  copyBytes(msg, HEADER_SIZE, q.questionEnd, out, HEADER_SIZE);
  return q.questionEnd;
}

// ---- names written against the question (compression) ------------------------------------------

// Encoded presentation names (SOA mname/rname, local-record owners) recur on every negative or local
// answer; a small bounded cache keeps them off the allocation path.
const nameCache = new Map<string, Buffer>();
const NAME_CACHE_MAX = 512;

function cachedWire(name: string): Buffer {
  let w = nameCache.get(name);
  if (w === undefined) {
    w = encodeName(name);
    if (nameCache.size >= NAME_CACHE_MAX) nameCache.clear();
    nameCache.set(name, w);
  }
  return w;
}

function foldEq(a: number, b: number): boolean {
  return a === b || ((a | 0x20) === (b | 0x20) && (a | 0x20) >= 0x61 && (a | 0x20) <= 0x7a);
}

/** How one name is written: `prefix` bytes of `wire`, then (if ptr ≥ 0) a pointer into the question. */
class NamePlan {
  wire: Buffer | null = null;
  prefix = 0;
  ptr = -1;

  get size(): number {
    return this.prefix + (this.ptr >= 0 ? 2 : 0);
  }

  /** Plan `name` as the longest suffix it shares with the question name, or uncompressed. */
  plan(name: string, msg: Buffer, q: ParsedQuery): this {
    if (name === q.name) {
      this.wire = null;
      this.prefix = 0;
      this.ptr = HEADER_SIZE;
      return this;
    }
    const w = cachedWire(name);
    this.wire = w;
    this.prefix = w.length;
    this.ptr = -1;
    const qNameEnd = q.questionEnd - 4; // one past the question's root octet
    // Label boundaries of `w`, longest suffix first; the root-only suffix is cheaper uncompressed.
    for (let i = 0; w[i] !== 0; i += w[i] + 1) {
      const sufLen = w.length - i;
      // Find the question boundary whose suffix has the same length.
      let p = HEADER_SIZE;
      while (msg[p] !== 0 && qNameEnd - p > sufLen) p += msg[p] + 1;
      if (qNameEnd - p !== sufLen) continue;
      let k = 0;
      while (k < sufLen && foldEq(msg[p + k], w[i + k])) k++;
      if (k === sufLen) {
        this.prefix = i;
        this.ptr = p;
        return this;
      }
    }
    return this;
  }

  write(out: Buffer, pos: number): number {
    if (this.prefix > 0) copyBytes(this.wire as Buffer, 0, this.prefix, out, pos);
    pos += this.prefix;
    if (this.ptr >= 0) {
      out.writeUInt16BE(0xc000 | this.ptr, pos);
      pos += 2;
    }
    return pos;
  }
}

const soaOwner = new NamePlan();
const soaMname = new NamePlan();
const soaRname = new NamePlan();

// ---- builders -----------------------------------------------------------------------------------

/** Error answer that still echoes the question (REFUSED, SERVFAIL, NOTIMP, FORMERR, BADVERS): clients match it to their query. */
export function buildRcode(msg: Buffer, q: ParsedQuery, rcode: number, opts?: ResponseOptions): Buffer {
  const optLen = planOpt(q, rcode, opts);
  const total = fitEde(q, q.questionEnd + optLen);
  const out = Buffer.allocUnsafe(total);
  let pos = startResponse(out, msg, q, rcode, opts?.aa === true, false, 0, 0, optLen > 0 ? 1 : 0);
  if (optLen > 0) pos = writeOpt(out, pos, q, rcode);
  return out;
}

/** Bare 12-octet answer for requests whose question cannot be trusted (QDCOUNT≠1, bad name, NOTIMP opcode). Only the low 4 rcode bits fit. */
export function buildHeaderOnly(id: number, requestFlags: number, rcode: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE);
  writeHeader(out, id & 0xffff, responseFlags(requestFlags, rcode, false, false), 0, 0, 0, 0);
  return out;
}

/** The sinkhole's main answer: A (4-octet) / AAAA (16-octet) records owned by the question name via pointer 0xC00C. */
export function buildAddresses(msg: Buffer, q: ParsedQuery, ttl: number, addrs: Buffer[], opts?: ResponseOptions): Buffer {
  const optLen = planOpt(q, 0, opts);
  let total = q.questionEnd + optLen;
  for (let i = 0; i < addrs.length; i++) {
    const n = addrs[i].length;
    if (n !== 4 && n !== 16) throw new RangeError(`buildAddresses: address ${i} is ${n} octets, expected 4 (A) or 16 (AAAA)`);
    total += 12 + n;
  }
  total = fitEde(q, total);
  const out = Buffer.allocUnsafe(total);
  let pos = startResponse(out, msg, q, 0, opts?.aa === true, false, addrs.length, 0, optLen > 0 ? 1 : 0);
  const t = clampTtl(ttl);
  for (let i = 0; i < addrs.length; i++) {
    const a = addrs[i];
    out.writeUInt16BE(QNAME_PTR, pos);
    out.writeUInt16BE(a.length === 4 ? TYPE.A : TYPE.AAAA, pos + 2);
    out.writeUInt16BE(CLASS.IN, pos + 4);
    out.writeUInt32BE(t, pos + 6);
    out.writeUInt16BE(a.length, pos + 10);
    copyBytes(a, 0, a.length, out, pos + 12);
    pos += 12 + a.length;
  }
  if (optLen > 0) writeOpt(out, pos, q, 0);
  return out;
}

/**
 * NODATA (rcode 0) or NXDOMAIN (3), with an SOA in authority so resolvers cache the negative answer
 * (RFC 2308 §3: its TTL is min(SOA TTL, MINIMUM)). The SOA owner, MNAME and RNAME are compressed
 * against the question when they share a suffix with it.
 */
export function buildNegative(msg: Buffer, q: ParsedQuery, rcode: 0 | 3, soa: SoaTemplate | null, opts?: ResponseOptions): Buffer {
  const optLen = planOpt(q, rcode, opts);
  let total = q.questionEnd + optLen;
  if (soa) {
    soaOwner.plan(soa.zone, msg, q);
    soaMname.plan(soa.mname, msg, q);
    soaRname.plan(soa.rname, msg, q);
    total += soaOwner.size + 10 + soaMname.size + soaRname.size + 20;
  }
  total = fitEde(q, total);
  const out = Buffer.allocUnsafe(total);
  let pos = startResponse(out, msg, q, rcode, opts?.aa === true, false, 0, soa ? 1 : 0, optLen > 0 ? 1 : 0);
  if (soa) {
    pos = soaOwner.write(out, pos);
    out.writeUInt16BE(TYPE.SOA, pos);
    out.writeUInt16BE(CLASS.IN, pos + 2);
    out.writeUInt32BE(clampTtl(Math.min(soa.ttl, soa.minimum)), pos + 4);
    out.writeUInt16BE(soaMname.size + soaRname.size + 20, pos + 8);
    pos = soaMname.write(out, pos + 10);
    pos = soaRname.write(out, pos);
    out.writeUInt32BE(soa.serial >>> 0, pos);
    out.writeUInt32BE(soa.refresh >>> 0, pos + 4);
    out.writeUInt32BE(soa.retry >>> 0, pos + 8);
    out.writeUInt32BE(soa.expire >>> 0, pos + 12);
    out.writeUInt32BE(clampTtl(soa.minimum), pos + 16);
    pos += 20;
  }
  if (optLen > 0) writeOpt(out, pos, q, rcode);
  return out;
}

function planRrs(rrs: readonly Rr[] | undefined, msg: Buffer, q: ParsedQuery, plans: NamePlan[]): number {
  let size = 0;
  if (!rrs) return 0;
  for (let i = 0; i < rrs.length; i++) {
    const rr = rrs[i];
    if (rr.rdata.length > 0xffff) throw new RangeError(`buildRecords: RDATA of record ${i} (type ${rr.type}) is ${rr.rdata.length} octets, over 65535`);
    const plan = new NamePlan();
    if (rr.name === undefined) plan.ptr = HEADER_SIZE;
    else plan.plan(rr.name, msg, q);
    plans.push(plan);
    size += plan.size + 10 + rr.rdata.length;
  }
  return size;
}

function writeRrs(out: Buffer, pos: number, rrs: readonly Rr[] | undefined, plans: NamePlan[], from: number): number {
  if (!rrs) return pos;
  for (let i = 0; i < rrs.length; i++) {
    const rr = rrs[i];
    pos = plans[from + i].write(out, pos);
    out.writeUInt16BE(rr.type & 0xffff, pos);
    out.writeUInt16BE(CLASS.IN, pos + 2);
    out.writeUInt32BE(clampTtl(rr.ttl), pos + 4);
    out.writeUInt16BE(rr.rdata.length, pos + 8);
    rr.rdata.copy(out, pos + 10);
    pos += 10 + rr.rdata.length;
  }
  return pos;
}

/**
 * Generic answer for local records (A/AAAA/CNAME/PTR/TXT…, RDATA supplied ready-encoded) with an
 * optional authority section and rcode. Owner names are compressed against the question.
 */
export function buildRecords(msg: Buffer, q: ParsedQuery, answers: Rr[], opts?: ResponseOptions & { rcode?: number; authority?: Rr[] }): Buffer {
  const rcode = opts?.rcode ?? 0;
  const authority = opts?.authority;
  const optLen = planOpt(q, rcode, opts);
  const plans: NamePlan[] = [];
  let total = q.questionEnd + optLen + planRrs(answers, msg, q, plans) + planRrs(authority, msg, q, plans);
  total = fitEde(q, total);
  const out = Buffer.allocUnsafe(total);
  let pos = startResponse(out, msg, q, rcode, opts?.aa === true, false, answers.length, authority ? authority.length : 0, optLen > 0 ? 1 : 0);
  pos = writeRrs(out, pos, answers, plans, 0);
  pos = writeRrs(out, pos, authority, plans, answers.length);
  if (optLen > 0) writeOpt(out, pos, q, rcode);
  return out;
}

/** An SOA as a record for buildRecords' authority section (names uncompressed; TTL min(ttl, minimum) as buildNegative writes it). */
export function soaRecord(soa: SoaTemplate): Rr {
  const mname = encodeName(soa.mname);
  const rname = encodeName(soa.rname);
  const rdata = Buffer.allocUnsafe(mname.length + rname.length + 20);
  mname.copy(rdata, 0);
  rname.copy(rdata, mname.length);
  let pos = mname.length + rname.length;
  for (const v of [soa.serial >>> 0, soa.refresh >>> 0, soa.retry >>> 0, soa.expire >>> 0, clampTtl(soa.minimum)]) {
    rdata.writeUInt32BE(v, pos);
    pos += 4;
  }
  return { name: soa.zone, type: TYPE.SOA, ttl: Math.min(soa.ttl, soa.minimum), rdata };
}

// HINFO RDATA per RFC 8482 §4.2: CPU "RFC8482", OS empty.
const HINFO_RFC8482 = Buffer.from([7, 0x52, 0x46, 0x43, 0x38, 0x34, 0x38, 0x32, 0]);

/** RFC 8482 answer to qtype ANY: one synthesized HINFO, so ANY cannot be used for amplification. */
export function buildAnyRefusal(msg: Buffer, q: ParsedQuery, ttl: number): Buffer {
  const optLen = planOpt(q, 0, undefined);
  const out = Buffer.allocUnsafe(q.questionEnd + 12 + HINFO_RFC8482.length + optLen);
  let pos = startResponse(out, msg, q, 0, false, false, 1, 0, optLen > 0 ? 1 : 0);
  out.writeUInt16BE(QNAME_PTR, pos);
  out.writeUInt16BE(TYPE.HINFO, pos + 2);
  out.writeUInt16BE(CLASS.IN, pos + 4);
  out.writeUInt32BE(clampTtl(ttl), pos + 6);
  out.writeUInt16BE(HINFO_RFC8482.length, pos + 10);
  copyBytes(HINFO_RFC8482, 0, HINFO_RFC8482.length, out, pos + 12);
  pos += 12 + HINFO_RFC8482.length;
  if (optLen > 0) writeOpt(out, pos, q, 0);
  return out;
}

/** TC=1 with header + question (+ OPT): what a UDP client gets when the real answer does not fit, so it retries over TCP. */
export function buildTruncated(msg: Buffer, q: ParsedQuery): Buffer {
  const optLen = planOpt(q, 0, undefined);
  const out = Buffer.allocUnsafe(q.questionEnd + optLen);
  const pos = startResponse(out, msg, q, 0, false, true, 0, 0, optLen > 0 ? 1 : 0);
  if (optLen > 0) writeOpt(out, pos, q, 0);
  return out;
}

/**
 * Append our OPT (and optional EDE) to a complete response that carries none, bumping ARCOUNT. Why:
 * cached and forwarded answers are stored without the upstream's OPT and must get one matching
 * this requester's EDNS. `rcode` is the full rcode whose high bits the OPT carries (the header
 * nibble is the caller's). Returns `body` itself when the requester sent no EDNS.
 */
export function addEdnsOpt(body: Buffer, q: ParsedQuery, opts?: ResponseOptions, rcode = 0): Buffer {
  if (!q.edns || body.length < HEADER_SIZE) return body;
  const optLen = planOpt(q, rcode, opts);
  const total = fitEde(q, body.length + optLen);
  const out = Buffer.allocUnsafe(total);
  body.copy(out, 0);
  out.writeUInt16BE((body.readUInt16BE(10) + 1) & 0xffff, 10);
  // The extended bits of the rcode live in the OPT's TTL (RFC 6891 §6.1.3): an upstream's
  // BADCOOKIE or BADVERS must not become NOERROR-with-some-low-bits on the way through.
  writeOpt(out, body.length, q, rcode);
  return out;
}
