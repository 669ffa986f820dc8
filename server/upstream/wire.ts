// The little DNS wire work the upstream transports need: header fields, fresh IDs and deciding
// whether a reply really answers our query. Everything here bounds-checks, because replies
// come from the network and may be forged or garbage.
import { randomFillSync } from 'node:crypto';

export const HEADER_SIZE = 12;
export const RCODE_SERVFAIL = 2;
export const RCODE_REFUSED = 5;

export function readId(msg: Buffer): number {
  return (msg[0]! << 8) | msg[1]!;
}

export function writeId(msg: Buffer, id: number): void {
  msg[0] = id >>> 8;
  msg[1] = id & 0xff;
}

export function isTruncated(msg: Buffer): boolean {
  return (msg[2]! & 0x02) !== 0;
}

export function rcodeOf(msg: Buffer): number {
  return msg[3]! & 0x0f;
}

// IDs come from a CSPRNG (RFC 5452 §9.2); drawing them from a refilled block keeps the
// per-query cost to two byte reads.
const idBlock = Buffer.alloc(512);
let idOffset = idBlock.length;

export function randomId(): number {
  if (idOffset >= idBlock.length) {
    randomFillSync(idBlock);
    idOffset = 0;
  }
  const id = (idBlock[idOffset]! << 8) | idBlock[idOffset + 1]!;
  idOffset += 2;
  return id;
}

/** A copy of `query` carrying `id`; the caller's buffer is never modified. */
export function withId(query: Buffer, id: number): Buffer {
  const copy = Buffer.allocUnsafe(query.length);
  query.copy(copy);
  writeId(copy, id);
  return copy;
}

/** Throws when a caller hands over something that cannot be a DNS query. */
export function assertQuery(query: Buffer): void {
  if (query.length < HEADER_SIZE || query.length > 65535) {
    throw new RangeError(`a DNS query must be 12 to 65535 bytes, got ${query.length}`);
  }
}

/**
 * Does `reply` answer `sent`? Same ID, QR=1, same opcode and the same question section
 * (names compared case-insensitively, since resolvers may echo 0x20-randomised case).
 */
export function answersQuery(sent: Buffer, reply: Buffer): boolean {
  if (reply.length < HEADER_SIZE) return false;
  if (reply[0] !== sent[0] || reply[1] !== sent[1]) return false;
  if ((reply[2]! & 0x80) === 0) return false;
  if ((reply[2]! & 0x78) !== (sent[2]! & 0x78)) return false;
  return sameQuestions(sent, reply);
}

/**
 * The question sections are the same octets, letter case aside. Names are compared as written,
 * never through compression pointers: a server has nothing earlier to point at when it echoes a
 * question, so a compressed one is forged or broken, and the caller later copies its own
 * question over the reply's, which must therefore have the same length.
 */
export function sameQuestions(sent: Buffer, reply: Buffer): boolean {
  const count = (sent[4]! << 8) | sent[5]!;
  if (((reply[4]! << 8) | reply[5]!) !== count) return false;
  let so = HEADER_SIZE;
  let ro = HEADER_SIZE;
  for (let q = 0; q < count; q++) {
    if (!namesEqual(sent, so, reply, ro)) return false;
    so = skipName(sent, so);
    ro = skipName(reply, ro);
    if (so < 0 || ro < 0 || so + 4 > sent.length || ro + 4 > reply.length) return false;
    // QTYPE and QCLASS
    if (sent[so] !== reply[ro] || sent[so + 1] !== reply[ro + 1] || sent[so + 2] !== reply[ro + 2] || sent[so + 3] !== reply[ro + 3]) {
      return false;
    }
    so += 4;
    ro += 4;
  }
  return true;
}

/** Offset just past the name starting at `off`, or -1 when it runs off the message. */
export function skipName(msg: Buffer, off: number): number {
  let o = off;
  while (o < msg.length) {
    const len = msg[o]!;
    if (len === 0) return o + 1;
    if ((len & 0xc0) === 0xc0) return o + 2 <= msg.length ? o + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    o += 1 + len;
  }
  return -1;
}

const MAX_NAME_OCTETS = 255;

/**
 * Compares two names written in place, label by label, ASCII case-insensitively. A compression
 * pointer on either side makes them unequal (see sameQuestions).
 */
export function namesEqual(a: Buffer, aStart: number, b: Buffer, bStart: number): boolean {
  let ao = aStart;
  let bo = bStart;
  for (;;) {
    if (ao >= a.length || bo >= b.length) return false;
    const la = a[ao]!;
    const lb = b[bo]!;
    if (la !== lb || (la & 0xc0) !== 0) return false;
    if (la === 0) return true;
    if (ao + 1 + la > a.length || bo + 1 + lb > b.length) return false;
    if (ao + 1 + la - aStart > MAX_NAME_OCTETS) return false;
    for (let i = 1; i <= la; i++) {
      if (lower(a[ao + i]!) !== lower(b[bo + i]!)) return false;
    }
    ao += 1 + la;
    bo += 1 + lb;
  }
}

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

/** The response as the caller expects it: their ID back in place (written into `reply`). */
export function restoreId(reply: Buffer, callerId: number): Buffer {
  writeId(reply, callerId);
  return reply;
}
