// Seeded hostile UDP datagrams for the reliability suite's fuzz flood: random bytes, truncated
// queries, bit-flipped queries and structured nasties (pointer loops, odd counts, long labels, QR=1,
// odd opcodes, random types). The same seed gives the same packets on every machine.
import { buildQuery } from '../lib/dns-probe.js';
import { seededRandom } from '../lib/names.js';

/** A query with an OPT record (UDP size 1232, DO bit as asked): buildQuery plus the OPT RR. */
export function withEdns(query: Buffer, dnssecOk: boolean): Buffer {
  const opt = Buffer.alloc(11);
  opt.writeUInt16BE(41, 1);
  opt.writeUInt16BE(1232, 3);
  opt.writeUInt16BE(dnssecOk ? 0x8000 : 0, 7);
  const out = Buffer.concat([query, opt]);
  out.writeUInt16BE(1, 10);
  return out;
}

/** Offset of QTYPE in a query for www.example.com (QCLASS follows it). */
const WWW_QTYPE_AT = 12 + 17;

/** An endless, seeded source of hostile datagrams; kinds take turns so every prefix of the stream mixes them. */
export function hostilePackets(seed: number): () => Buffer {
  const rand = seededRandom(seed);
  const pick = (n: number) => Math.floor(rand() * n);
  const valid = [withEdns(buildQuery('www.example.com', 1), false), withEdns(buildQuery('ads.example.org', 28), true), buildQuery('example.net', 65)];
  let n = 0;
  return () => {
    const kind = n++ % 4;
    if (kind === 0) {
      const pkt = Buffer.allocUnsafe(pick(601));
      for (let j = 0; j < pkt.length; j++) pkt[j] = pick(256);
      return pkt;
    }
    if (kind === 1) {
      const base = valid[pick(valid.length)];
      return base.subarray(0, pick(base.length));
    }
    if (kind === 2) {
      const pkt = Buffer.from(valid[pick(valid.length)]);
      const flips = 1 + pick(4);
      for (let f = 0; f < flips; f++) pkt[pick(pkt.length)] ^= 1 << pick(8);
      return pkt;
    }
    const pkt = Buffer.from(valid[0]);
    const v = pick(6);
    if (v === 0) pkt.writeUInt16BE([0, 2, 65535][pick(3)], 4);
    else if (v === 1) pkt.writeUInt16BE(0xc00c, 12); // a pointer to itself
    else if (v === 2) pkt[12] = 64 + pick(63); // a label longer than 63
    else if (v === 3) pkt[2] |= 0x80; // QR=1: must never be answered
    else if (v === 4) pkt[2] = (pkt[2] & 0x87) | (pick(16) << 3); // any opcode
    else pkt.writeUInt16BE(pick(65536), WWW_QTYPE_AT + 2 * pick(2)); // any QTYPE or QCLASS
    return pkt;
  };
}
