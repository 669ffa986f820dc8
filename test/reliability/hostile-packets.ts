// The hostile datagrams of issue 7, each with what the server must do with it. Built by hand so
// every bit is ours; a seeded PRNG for the random ones.
import { seededRandom } from '../../bench/lib/names.js';
import { makeQuery } from '../helpers/dns-client.js';
import { VALID_NAME } from './udp-exchanger.js';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NOTIMP: 4, REFUSED: 5 } as const;
/** Extended RCODE 16: the OPT TTL's high byte 1 with header RCODE 0 (RFC 6891). */
export const BADVERS = 16;

/**
 * What must come back: nothing, exactly one reply with this RCODE (16 for BADVERS), or, for random
 * bytes, at most one well-formed reply of any kind. `upstream`: the answer needs a round trip to
 * the upstream, so the test waits for it.
 */
export type Expect = { reply: 'none' } | { reply: 'any' } | { reply: number; upstream?: boolean };

export interface HostileCase {
  attack: string;
  packets: { pkt: Buffer; expect: Expect; label: string }[];
}

let nextId = 0x100;
/** Queries get distinct IDs so each reply is matched to its packet. */
const id = () => (nextId = (nextId + 1) & 0xffff);
const q = (name: string, type: string | number, opts: Parameters<typeof makeQuery>[2] = {}) => makeQuery(name, type, { id: id(), ...opts });

/** A query whose QNAME is the given raw bytes (no OPT). */
function rawName(name: number[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id(), 0);
  header[2] = 0x01;
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, Buffer.from(name), Buffer.from([0, 1, 0, 1])]);
}

function opt(version = 0, owner: number[] = [0], rdata: number[] = []): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(41, 0);
  fixed.writeUInt16BE(1232, 2);
  fixed[5] = version;
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([Buffer.from(owner), fixed, Buffer.from(rdata)]);
}

function withAdditionals(base: Buffer, ...rrs: Buffer[]): Buffer {
  const out = Buffer.concat([base, ...rrs]);
  out.writeUInt16BE(base.readUInt16BE(10) + rrs.length, 10);
  return out;
}

const label = (n: number) => 'a'.repeat(n);

/** `pkt` after `change` has written into it. */
function edited(pkt: Buffer, change: (p: Buffer) => void): Buffer {
  change(pkt);
  return pkt;
}

export function hostileCases(seed: number): HostileCase[] {
  const rand = seededRandom(seed);
  const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));

  const random: HostileCase = { attack: 'random bytes, every length 0–600', packets: [] };
  for (let n = 0; n <= 600; n++) random.packets.push({ pkt: randomBytes(n), expect: { reply: 'any' }, label: `random ${n} bytes` });
  // The same lengths again as plausible queries (QR=0, opcode 0, one question), so the parser goes
  // past the header into names and records instead of dropping most of them at the first byte.
  for (let n = 12; n <= 600; n++) {
    const pkt = randomBytes(n);
    pkt[2] &= 0x07;
    pkt.writeUInt16BE(1, 4);
    random.packets.push({ pkt, expect: { reply: 'any' }, label: `random query-shaped ${n} bytes` });
  }

  const full = q('www.example.com', 'A', { edns: { udpSize: 1232, do: true } });
  const truncated: HostileCase = { attack: 'truncated queries (every prefix)', packets: [] };
  for (let n = 0; n < full.length; n++) truncated.packets.push({ pkt: Buffer.from(full.subarray(0, n)), expect: { reply: n < 12 ? 'none' : RCODE.FORMERR }, label: `first ${n} of ${full.length} bytes` });

  const names: HostileCase = {
    attack: 'labels over 63, names over 255 bytes',
    packets: [
      { pkt: q(`${label(64)}.example.org`, 'A'), expect: { reply: RCODE.FORMERR }, label: 'a 64-byte label' },
      { pkt: rawName([200, ...Buffer.from(label(200)), 0]), expect: { reply: RCODE.FORMERR }, label: 'length byte 200 (pointer bits set)' },
      { pkt: q([label(63), label(63), label(63), label(61)].join('.'), 'A'), expect: { reply: RCODE.NOERROR, upstream: true }, label: 'a name of exactly 255 bytes (legal)' },
      { pkt: q([label(63), label(63), label(63), label(62)].join('.'), 'A'), expect: { reply: RCODE.FORMERR }, label: 'a name of 256 bytes' },
      { pkt: q(Array.from({ length: 5 }, () => label(63)).join('.'), 'A'), expect: { reply: RCODE.FORMERR }, label: 'a name of 321 bytes' },
      { pkt: q(Array.from({ length: 200 }, () => 'a').join('.'), 'A'), expect: { reply: RCODE.FORMERR }, label: '200 one-byte labels (401 bytes)' },
      { pkt: rawName([3, 0x77, 0x77, 0x77]), expect: { reply: RCODE.FORMERR }, label: 'a name without its root label' },
    ],
  };

  const base = () => q(VALID_NAME, 'A', { edns: null });
  const optCase: HostileCase = {
    attack: 'several OPT records, bad OPT',
    packets: [
      { pkt: withAdditionals(base(), opt(), opt()), expect: { reply: RCODE.FORMERR }, label: 'two OPT' },
      { pkt: withAdditionals(base(), opt(), opt(), opt()), expect: { reply: RCODE.FORMERR }, label: 'three OPT' },
      { pkt: withAdditionals(base(), opt(0, [3, 0x77, 0x77, 0x77, 0])), expect: { reply: RCODE.FORMERR }, label: 'OPT owned by a name' },
      { pkt: withAdditionals(base(), opt(0, [0], [0, 10, 0, 200, 1, 2])), expect: { reply: RCODE.FORMERR }, label: 'an option longer than RDATA' },
      { pkt: edited(withAdditionals(base(), opt()), (p) => p.writeUInt16BE(5, 10)), expect: { reply: RCODE.FORMERR }, label: 'ARCOUNT 5, one record' },
    ],
  };

  const ednsVersion: HostileCase = {
    attack: 'EDNS version 1 and above',
    packets: [1, 2, 255].map((v) => ({ pkt: q(VALID_NAME, 'A', { edns: { version: v } }), expect: { reply: BADVERS }, label: `EDNS version ${v}` })),
  };

  const opcodes: HostileCase = {
    attack: 'every opcode 0–15',
    packets: Array.from({ length: 16 }, (_, op) => ({ pkt: q(VALID_NAME, 'A', { opcode: op }), expect: { reply: op === 0 ? RCODE.NOERROR : RCODE.NOTIMP }, label: `opcode ${op}` })),
  };

  const header: HostileCase = {
    attack: 'QR=1, question counts 0, 2, 65535, the 12-byte all-zero packet',
    packets: [
      { pkt: edited(q(VALID_NAME, 'A'), (p) => (p[2] |= 0x80)), expect: { reply: 'none' }, label: 'QR=1 (a response)' },
      ...[0, 2, 65535].map((n) => ({ pkt: edited(q(VALID_NAME, 'A'), (p) => p.writeUInt16BE(n, 4)), expect: { reply: RCODE.FORMERR } as Expect, label: `QDCOUNT ${n}` })),
      { pkt: edited(Buffer.concat([q(VALID_NAME, 'A', { edns: null }), q(VALID_NAME, 'AAAA', { edns: null }).subarray(12)]), (p) => p.writeUInt16BE(2, 4)), expect: { reply: RCODE.FORMERR }, label: 'two real questions' },
      { pkt: Buffer.alloc(12), expect: { reply: RCODE.FORMERR }, label: 'twelve zero bytes (kills naive dns2 servers)' },
    ],
  };

  const pointers: HostileCase = {
    attack: 'compression-pointer loops',
    packets: [
      { pkt: rawName([0xc0, 12]), expect: { reply: RCODE.FORMERR }, label: 'a pointer to itself' },
      { pkt: rawName([1, 0x61, 0xc0, 12]), expect: { reply: RCODE.FORMERR }, label: 'a label then a pointer back to it' },
      { pkt: rawName([0xc0, 14, 0xc0, 12]), expect: { reply: RCODE.FORMERR }, label: 'two pointers to each other' },
      { pkt: rawName([0xc0, 0xff]), expect: { reply: RCODE.FORMERR }, label: 'a pointer past the end' },
      { pkt: rawName([0xc0, 0]), expect: { reply: RCODE.FORMERR }, label: 'a pointer into the header' },
    ],
  };

  const types: HostileCase = {
    attack: 'unknown and meta QTYPEs',
    packets: [
      ...[0, 1000, 65280, 65534, 65535].map((t) => ({ pkt: q('types.example.net', t), expect: { reply: RCODE.NOERROR, upstream: true } as Expect, label: `QTYPE ${t}` })),
      { pkt: q('example.net', 'AXFR'), expect: { reply: RCODE.REFUSED }, label: 'AXFR over UDP' },
      { pkt: q('example.net', 'IXFR'), expect: { reply: RCODE.REFUSED }, label: 'IXFR over UDP' },
    ],
  };

  const classes: HostileCase = {
    attack: 'CHAOS and unknown QCLASSes',
    packets: [
      ...['version.bind', 'hostname.bind', 'id.server', 'version.server'].map((n) => ({ pkt: q(n, 'TXT', { qclass: 3 }), expect: { reply: RCODE.REFUSED } as Expect, label: `${n} CH TXT` })),
      ...[0, 2, 4, 254, 255, 1000, 65535].map((c) => ({ pkt: q('example.net', 'A', { qclass: c }), expect: { reply: RCODE.REFUSED } as Expect, label: `QCLASS ${c}` })),
    ],
  };

  return [random, truncated, names, optCase, ednsVersion, opcodes, header, pointers, types, classes];
}
