// The hand-written wire layer against dns2 as the reference implementation: dns2 must read every
// response we build, and we must read every query dns2 builds.
import { describe, expect, it } from 'vitest';
import { Packet } from 'dns2';
import { CLASS, EDE, EDNS_UDP_SIZE, RCODE, TYPE } from '../server/wire/constants.js';
import { parseQuery, type ParsedQuery, type QueryParse } from '../server/wire/query.js';
import {
  addEdnsOpt,
  buildAddresses,
  buildAnyRefusal,
  buildHeaderOnly,
  buildNegative,
  buildRcode,
  buildRecords,
  buildTruncated,
  encodeName,
  soaRecord,
  udpResponseLimit,
  type SoaTemplate,
} from '../server/wire/response.js';
import { buildQuery, inspectResponse, questionMatches, readRecords, stripOpt, strippedTtlOffsets, writeTtls } from '../server/wire/message.js';

type Dns2Packet = ReturnType<typeof Packet.parse>;
type Flags = { ad?: number; cd?: number };

// ---- helpers --------------------------------------------------------------------------------------

interface QueryOpts {
  id?: number;
  rd?: boolean;
  cd?: boolean;
  edns?: { udp?: number; do?: boolean; version?: number };
  cls?: number;
}

/** A query as dns2's encoder writes it. */
function dns2Query(name: string, type: number, o: QueryOpts = {}): Buffer {
  const p = new Packet();
  p.header.id = o.id ?? 0x1234;
  p.header.rd = o.rd === false ? 0 : 1;
  (p.header as unknown as Flags).cd = o.cd ? 1 : 0;
  p.questions.push({ name, type, class: o.cls ?? CLASS.IN } as Dns2Packet['questions'][number]);
  if (o.edns) {
    p.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: o.edns.udp ?? 4096, doFlag: o.edns.do ?? false, version: o.edns.version ?? 0 }));
  }
  return p.toBuffer();
}

function parsedOk(msg: Buffer): ParsedQuery {
  const r = parseQuery(msg);
  if (!r.ok) throw new Error(`expected the query to parse, got ${JSON.stringify(r)}`);
  return r.query;
}

function dns2Parse(buf: Buffer): Dns2Packet {
  const p = Packet.parse(buf);
  expect(p.errors.map((e) => e.message)).toEqual([]);
  return p;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): Buffer {
  return Buffer.concat([u16(id), u16(flags), u16(qd), u16(an), u16(ns), u16(ar)]);
}

function question(nameWire: Buffer, type: number, cls = CLASS.IN): Buffer {
  return Buffer.concat([nameWire, u16(type), u16(cls)]);
}

/** An RR with an explicit owner encoding (wire or pointer). */
function rr(owner: Buffer, type: number, cls: number, ttl: number, rdata: Buffer): Buffer {
  return Buffer.concat([owner, u16(type), u16(cls), u32(ttl), u16(rdata.length), rdata]);
}

function opt(udp: number, ttl: number, rdata: Buffer = Buffer.alloc(0)): Buffer {
  return rr(Buffer.from([0]), TYPE.OPT, udp, ttl, rdata);
}

const ptr = (off: number): Buffer => u16(0xc000 | off);

function expectError(r: QueryParse, rcode: number, reason: RegExp): Extract<QueryParse, { drop: false }> {
  expect(r.ok).toBe(false);
  if (r.ok || r.drop) throw new Error(`expected an answerable error, got ${JSON.stringify(r)}`);
  expect(r.rcode).toBe(rcode);
  expect(r.reason).toMatch(reason);
  return r;
}

const edeOf = (p: Dns2Packet) => {
  const o = p.additionals.find((r) => r.type === TYPE.OPT);
  return (o?.rdata ?? []) as { ednsCode: number; infoCode: number; extraText: string }[];
};

// ---- parseQuery ----------------------------------------------------------------------------------

describe('parseQuery reads queries written by dns2', () => {
  it('reads a plain A query without EDNS', () => {
    const msg = dns2Query('www.example.org', TYPE.A, { id: 0xbeef });
    const q = parsedOk(msg);
    expect(q).toMatchObject({ id: 0xbeef, opcode: 0, rd: true, cd: false, ad: false, name: 'www.example.org', qtype: TYPE.A, qclass: CLASS.IN, edns: null });
    expect(q.questionEnd).toBe(msg.length);
  });

  it('reads EDNS size and the DO bit', () => {
    const q = parsedOk(dns2Query('example.org', TYPE.AAAA, { edns: { udp: 1400, do: true } }));
    expect(q.edns).toEqual({ udpSize: 1400, version: 0, dnssecOk: true });
    const q2 = parsedOk(dns2Query('example.org', TYPE.AAAA, { edns: { udp: 4096, do: false } }));
    expect(q2.edns).toEqual({ udpSize: 4096, version: 0, dnssecOk: false });
  });

  it('raises an EDNS size below 512 to 512', () => {
    const msg = Buffer.concat([header(1, 0x0100, 1, 0, 0, 1), question(encodeName('example.org'), TYPE.A), opt(100, 0)]);
    expect(parsedOk(msg).edns?.udpSize).toBe(512);
  });

  it('lowercases mixed-case (0x20) names and keeps RD/CD flags', () => {
    const q = parsedOk(dns2Query('WwW.ExAmPlE.OrG', TYPE.A, { rd: false, cd: true }));
    expect(q.name).toBe('www.example.org');
    expect(q.rd).toBe(false);
    expect(q.cd).toBe(true);
  });

  it('reads the root name as the empty string', () => {
    const msg = Buffer.concat([header(7, 0, 1, 0, 0, 0), question(Buffer.from([0]), TYPE.NS)]);
    expect(parsedOk(msg)).toMatchObject({ name: '', qtype: TYPE.NS, questionEnd: 17 });
  });

  it('writes a dot inside a label as \\046 so it cannot pose as two labels, and other odd bytes as \\DDD', () => {
    const wire = Buffer.concat([Buffer.from([3]), Buffer.from('a.b'), Buffer.from([5]), Buffer.from('X y\\_'), encodeName('example.org')]);
    const q = parsedOk(Buffer.concat([header(1, 0, 1, 0, 0, 0), question(wire, TYPE.A)]));
    expect(q.name).toBe('a\\046b.x\\032y\\092_.example.org');
    expect(q.name.startsWith('a.b.')).toBe(false);
    // The escaped form encodes back to the same labels (lowercased).
    expect(encodeName(q.name).equals(Buffer.from(wire.toString('latin1').toLowerCase(), 'latin1'))).toBe(true);
  });

  it('escapes bytes above 0x7f', () => {
    const wire = Buffer.concat([Buffer.from([2, 0xc3, 0xa9]), encodeName('example.org')]);
    expect(parsedOk(Buffer.concat([header(1, 0, 1, 0, 0, 0), question(wire, TYPE.A)])).name).toBe('\\195\\169.example.org');
  });

  it('steps over answer and authority RRs in a query to reach the OPT', () => {
    const msg = Buffer.concat([
      header(9, 0x0100, 1, 1, 1, 1),
      question(encodeName('example.org'), TYPE.A),
      rr(ptr(12), TYPE.A, CLASS.IN, 60, Buffer.from([192, 0, 2, 1])),
      rr(Buffer.concat([Buffer.from([2]), Buffer.from('ns'), ptr(12)]), TYPE.A, CLASS.IN, 60, Buffer.from([192, 0, 2, 2])),
      opt(1232, 0x8000),
    ]);
    expect(parsedOk(msg).edns).toEqual({ udpSize: 1232, version: 0, dnssecOk: true });
  });

  it('accepts a non-OPT additional RR next to the OPT', () => {
    const msg = Buffer.concat([header(9, 0, 1, 0, 0, 2), question(encodeName('example.org'), TYPE.A), rr(ptr(12), TYPE.TXT, CLASS.IN, 0, Buffer.from([1, 0x61])), opt(1232, 0)]);
    expect(parsedOk(msg).edns?.udpSize).toBe(1232);
  });
});

describe('parseQuery drops what must never be answered', () => {
  it('drops messages shorter than a header', () => {
    for (const n of [0, 1, 11]) {
      const r = parseQuery(Buffer.alloc(n));
      expect(r).toMatchObject({ ok: false, drop: true });
    }
  });

  it('drops responses (QR=1) so two servers can never ping-pong', () => {
    const msg = dns2Query('example.org', TYPE.A);
    msg[2] |= 0x80;
    expect(parseQuery(msg)).toMatchObject({ ok: false, drop: true, reason: expect.stringMatching(/QR=1/) });
  });
});

describe('parseQuery answers malformed queries with an rcode', () => {
  const base = (qd: number, rest: Buffer[], ar = 0, flags = 0x0100) => Buffer.concat([header(0x4242, flags, qd, 0, 0, ar), ...rest]);
  const q = question(encodeName('example.org'), TYPE.A);

  it('answers NOTIMP with the header copied for every opcode other than QUERY', () => {
    for (const opcode of [1, 2, 4, 5, 15]) {
      const flags = (opcode << 11) | 0x0100;
      const r = expectError(parseQuery(base(1, [q], 0, flags)), RCODE.NOTIMP, /opcode/);
      expect(r.id).toBe(0x4242);
      expect(r.flags).toBe(flags);
      const resp = dns2Parse(buildHeaderOnly(r.id, r.flags, r.rcode));
      expect(resp.header).toMatchObject({ id: 0x4242, qr: 1, opcode, rd: 1, rcode: RCODE.NOTIMP, qdcount: 0 });
    }
  });

  it('answers FORMERR when QDCOUNT is 0, 2 or 65535', () => {
    for (const qd of [0, 2, 65535]) expectError(parseQuery(base(qd, [q, q])), RCODE.FORMERR, /QDCOUNT/);
  });

  it('answers FORMERR for a question cut short in the name or in QTYPE/QCLASS', () => {
    const full = base(1, [q]);
    expectError(parseQuery(full.subarray(0, 12)), RCODE.FORMERR, /past the end/);
    expectError(parseQuery(full.subarray(0, 20)), RCODE.FORMERR, /past the end/);
    expectError(parseQuery(full.subarray(0, full.length - 1)), RCODE.FORMERR, /QTYPE\/QCLASS truncated/);
  });

  it('answers FORMERR for compression pointers in the question that loop, point forward or into the header', () => {
    expectError(parseQuery(base(1, [question(ptr(12), TYPE.A)])), RCODE.FORMERR, /loops/);
    expectError(parseQuery(base(1, [question(Buffer.concat([Buffer.from([1, 0x61]), ptr(12)]), TYPE.A)])), RCODE.FORMERR, /loops/);
    expectError(parseQuery(base(1, [Buffer.concat([question(ptr(18), TYPE.A), Buffer.from([0])])])), RCODE.FORMERR, /forward/);
    expectError(parseQuery(base(1, [question(ptr(4), TYPE.A)])), RCODE.FORMERR, /header/);
  });

  it('answers FORMERR for reserved label types and names over 255 octets', () => {
    expectError(parseQuery(base(1, [question(Buffer.from([0x40, 0x61, 0]), TYPE.A)])), RCODE.FORMERR, /reserved/);
    expectError(parseQuery(base(1, [question(Buffer.from([0x80, 0x61, 0]), TYPE.A)])), RCODE.FORMERR, /reserved/);
    const label = Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)]);
    const long = Buffer.concat([label, label, label, label, Buffer.from([0])]); // 4*64+1 = 257 octets
    expectError(parseQuery(base(1, [question(long, TYPE.A)])), RCODE.FORMERR, /255/);
  });

  it('accepts a name of exactly 255 octets', () => {
    const label = Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)]);
    const last = Buffer.concat([Buffer.from([61]), Buffer.alloc(61, 0x62)]);
    const name = Buffer.concat([label, label, label, last, Buffer.from([0])]); // 3*64+62+1 = 255
    expect(name.length).toBe(255);
    const parsed = parsedOk(base(1, [question(name, TYPE.A)]));
    expect(encodeName(parsed.name).length).toBe(255);
  });

  it('answers FORMERR with the question kept when there is more than one OPT', () => {
    const r = expectError(parseQuery(base(1, [q, opt(1232, 0), opt(1232, 0)], 2)), RCODE.FORMERR, /more than one OPT/);
    expect(r.query?.name).toBe('example.org');
  });

  it('answers FORMERR for a malformed OPT: owner not root, option overrunning RDATA, RDATA past the end', () => {
    const notRoot = rr(ptr(12), TYPE.OPT, 1232, 0, Buffer.alloc(0));
    expectError(parseQuery(base(1, [q, notRoot], 1)), RCODE.FORMERR, /owner/);
    const badOption = opt(1232, 0, Buffer.concat([u16(10), u16(8), Buffer.alloc(3)]));
    expectError(parseQuery(base(1, [q, badOption], 1)), RCODE.FORMERR, /option overruns/);
    const shortHeader = opt(1232, 0, Buffer.from([0, 10, 0]));
    expectError(parseQuery(base(1, [q, shortHeader], 1)), RCODE.FORMERR, /option overruns/);
    const cut = opt(1232, 0, Buffer.concat([u16(10), u16(4), Buffer.alloc(4)]));
    expectError(parseQuery(base(1, [q, cut.subarray(0, cut.length - 2)], 1)), RCODE.FORMERR, /past the end/);
    expectError(parseQuery(base(1, [q, Buffer.from([0, 0, 41])], 1)), RCODE.FORMERR, /additional RR 0/);
  });

  it('answers FORMERR when an answer or authority RR in the query is truncated', () => {
    const msg = Buffer.concat([header(1, 0, 1, 1, 0, 1), q, rr(ptr(12), TYPE.A, CLASS.IN, 1, Buffer.from([1, 2, 3, 4])).subarray(0, 8)]);
    expectError(parseQuery(msg), RCODE.FORMERR, /answer RR 0/);
    const msg2 = Buffer.concat([header(1, 0, 1, 0, 1, 1), q, Buffer.from([0xc0])]);
    expectError(parseQuery(msg2), RCODE.FORMERR, /authority RR 0/);
  });

  it('does not walk answer and authority RRs when there is no additional section to reach', () => {
    const msg = Buffer.concat([header(1, 0, 1, 0, 1, 0), q, Buffer.from([0xc0])]);
    expect(parseQuery(msg).ok).toBe(true);
  });

  it('answers BADVERS for EDNS version 1, keeping the question and an OPT for the response', () => {
    const msg = dns2Query('Example.ORG', TYPE.A, { edns: { version: 1, do: true } });
    const r = expectError(parseQuery(msg), RCODE.BADVERS, /version 1/);
    expect(r.query?.edns).toMatchObject({ version: 1, dnssecOk: true });
    const resp = dns2Parse(buildRcode(msg, r.query as ParsedQuery, RCODE.BADVERS));
    expect(resp.header.rcode).toBe(RCODE.BADVERS); // 4 header bits + extended bits from the OPT
    expect(resp.questions[0]).toMatchObject({ name: 'Example.ORG', type: TYPE.A });
    const o = resp.additionals.find((x) => x.type === TYPE.OPT);
    expect(o).toMatchObject({ version: 0, extendedRcode: 1, doFlag: true, class: EDNS_UDP_SIZE });
  });
});

// ---- response builders -----------------------------------------------------------------------------

describe('response builders write what dns2 reads', () => {
  it('answers A queries with the ID, the question in the client case, RD/CD copied and RA set', () => {
    const msg = dns2Query('TrAcKer.Example.org', TYPE.A, { id: 0x7777, cd: true });
    const q = parsedOk(msg);
    const out = buildAddresses(msg, q, 300, [Buffer.from([0, 0, 0, 0]), Buffer.from([192, 0, 2, 7])]);
    expect(out.subarray(12, q.questionEnd).equals(msg.subarray(12, q.questionEnd))).toBe(true);
    const p = dns2Parse(out);
    expect(p.header).toMatchObject({ id: 0x7777, qr: 1, opcode: 0, aa: 0, tc: 0, rd: 1, ra: 1, rcode: 0, qdcount: 1, ancount: 2, arcount: 0 });
    expect((p.header as unknown as Flags).cd).toBe(1);
    expect(p.answers.map((a) => [a.name, a.type, a.class, a.ttl, a.address])).toEqual([
      ['TrAcKer.Example.org', TYPE.A, CLASS.IN, 300, '0.0.0.0'],
      ['TrAcKer.Example.org', TYPE.A, CLASS.IN, 300, '192.0.2.7'],
    ]);
  });

  it('answers AAAA queries and appends an OPT echoing DO when the request had EDNS', () => {
    const msg = dns2Query('example.org', TYPE.AAAA, { edns: { do: true } });
    const q = parsedOk(msg);
    const p = dns2Parse(buildAddresses(msg, q, 60, [Buffer.alloc(16), Buffer.from('20010db8000000000000000000000001', 'hex')], { aa: true }));
    expect(p.header).toMatchObject({ aa: 1, ancount: 2, arcount: 1 });
    expect(p.answers.map((a) => a.address)).toEqual(['::', '2001:db8::1']);
    expect(p.additionals[0]).toMatchObject({ type: TYPE.OPT, class: EDNS_UDP_SIZE, version: 0, doFlag: true, extendedRcode: 0 });
  });

  it('rejects addresses that are neither 4 nor 16 octets', () => {
    const msg = dns2Query('example.org', TYPE.A);
    expect(() => buildAddresses(msg, parsedOk(msg), 60, [Buffer.alloc(5)])).toThrow(/5 octets/);
  });

  it('builds NODATA with an SOA owned by the question name (pointer) and TTL min(ttl, minimum)', () => {
    const msg = dns2Query('Blocked.Example.org', TYPE.HTTPS, { edns: {} });
    const q = parsedOk(msg);
    const soa: SoaTemplate = { zone: q.name, ttl: 3600, mname: 'ns.hushdns.test', rname: 'hostmaster.hushdns.test', serial: 7, refresh: 3600, retry: 600, expire: 86400, minimum: 300 };
    const out = buildNegative(msg, q, RCODE.NOERROR, soa, { ede: { code: EDE.Blocked, text: 'list-a: ||blocked.example.org^' } });
    const p = dns2Parse(out);
    expect(p.header).toMatchObject({ rcode: 0, ancount: 0, nscount: 1, arcount: 1 });
    expect(p.authorities[0]).toMatchObject({ name: 'Blocked.Example.org', type: TYPE.SOA, ttl: 300, primary: 'ns.hushdns.test', admin: 'hostmaster.hushdns.test', serial: 7, refresh: 3600, retry: 600, expiration: 86400, minimum: 300 });
    expect(edeOf(p)).toEqual([{ ednsCode: 15, infoCode: EDE.Blocked, extraText: 'list-a: ||blocked.example.org^' }]);
    const info = inspectResponse(out);
    expect(info?.negativeTtl).toBe(300);
  });

  it('builds NXDOMAIN with the SOA zone compressed against a parent of the question, and MNAME/RNAME too', () => {
    const msg = dns2Query('a.b.Example.ORG', TYPE.A);
    const q = parsedOk(msg);
    const soa: SoaTemplate = { zone: 'example.org', ttl: 60, mname: 'ns1.example.org', rname: 'admin.example.org', serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 900 };
    const out = buildNegative(msg, q, RCODE.NXDOMAIN, soa);
    const plain = 12 + (q.questionEnd - 12) + encodeName('example.org').length + 10 + encodeName('ns1.example.org').length + encodeName('admin.example.org').length + 20;
    expect(out.length).toBeLessThan(plain); // compressed
    const p = dns2Parse(out);
    expect(p.header.rcode).toBe(RCODE.NXDOMAIN);
    expect(p.authorities[0]).toMatchObject({ name: 'Example.ORG', ttl: 60, primary: 'ns1.Example.ORG', admin: 'admin.Example.ORG', minimum: 900 });
  });

  it('builds NXDOMAIN with an unrelated or root SOA zone uncompressed, and with no SOA at all', () => {
    const msg = dns2Query('example.org', TYPE.A);
    const q = parsedOk(msg);
    const soa: SoaTemplate = { zone: 'hushdns.test', ttl: 10, mname: 'ns.hushdns.test', rname: '.', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 10 };
    expect(dns2Parse(buildNegative(msg, q, RCODE.NXDOMAIN, soa)).authorities[0]).toMatchObject({ name: 'hushdns.test', primary: 'ns.hushdns.test', admin: '' });
    expect(dns2Parse(buildNegative(msg, q, RCODE.NXDOMAIN, { ...soa, zone: '' })).authorities[0]).toMatchObject({ name: '', type: TYPE.SOA });
    const bare = dns2Parse(buildNegative(msg, q, RCODE.NXDOMAIN, null));
    expect(bare.header).toMatchObject({ rcode: 3, nscount: 0, arcount: 0 });
  });

  it('builds local records: a CNAME chain with compressed owners, PTR, TXT and an authority section', () => {
    const msg = dns2Query('www.example.org', TYPE.A, { edns: {} });
    const q = parsedOk(msg);
    const txt = Buffer.concat([Buffer.from([5]), Buffer.from('hello'), Buffer.from([3]), Buffer.from('e=1')]);
    const out = buildRecords(
      msg,
      q,
      [
        { type: TYPE.CNAME, ttl: 120, rdata: encodeName('edge.example.org') },
        { name: 'edge.example.org', type: TYPE.A, ttl: 120, rdata: Buffer.from([192, 0, 2, 9]) },
        { name: 'edge.example.org', type: TYPE.TXT, ttl: 5, rdata: txt },
        { name: '9.2.0.192.in-addr.arpa', type: TYPE.PTR, ttl: 5, rdata: encodeName('edge.example.org') },
      ],
      { aa: true, authority: [{ name: 'example.org', type: TYPE.NS, ttl: 5, rdata: encodeName('ns.example.org') }] },
    );
    const p = dns2Parse(out);
    expect(p.header).toMatchObject({ aa: 1, ancount: 4, nscount: 1, arcount: 1 });
    expect(p.answers[0]).toMatchObject({ name: 'www.example.org', type: TYPE.CNAME, ttl: 120, domain: 'edge.example.org' });
    expect(p.answers[1]).toMatchObject({ name: 'edge.example.org', address: '192.0.2.9' });
    expect(p.answers[2]).toMatchObject({ name: 'edge.example.org', data: ['hello', 'e=1'] });
    expect(p.answers[3]).toMatchObject({ name: '9.2.0.192.in-addr.arpa', type: TYPE.PTR, domain: 'edge.example.org' });
    expect(p.authorities[0]).toMatchObject({ name: 'example.org', type: TYPE.NS, ns: 'ns.example.org' });
    expect(inspectResponse(out)?.cnameTargets).toEqual(['edge.example.org']);
  });

  it('builds records with a custom rcode', () => {
    const msg = dns2Query('example.org', TYPE.A);
    const p = dns2Parse(buildRecords(msg, parsedOk(msg), [], { rcode: RCODE.NXDOMAIN }));
    expect(p.header).toMatchObject({ rcode: 3, ancount: 0 });
  });

  it('answers ANY with the RFC 8482 HINFO', () => {
    const msg = dns2Query('example.org', TYPE.ANY, { edns: {} });
    const p = dns2Parse(buildAnyRefusal(msg, parsedOk(msg), 3600));
    expect(p.answers).toHaveLength(1);
    expect(p.answers[0]).toMatchObject({ name: 'example.org', type: TYPE.HINFO, class: CLASS.IN, ttl: 3600 });
    expect(Buffer.from(p.answers[0].data as Buffer).toString('latin1')).toBe('\x07RFC8482\x00');
    expect(p.additionals[0].type).toBe(TYPE.OPT);
  });

  it('builds a truncated answer: TC=1, question, OPT, no records', () => {
    const msg = dns2Query('example.org', TYPE.TXT, { edns: { udp: 512 } });
    const p = dns2Parse(buildTruncated(msg, parsedOk(msg)));
    expect(p.header).toMatchObject({ tc: 1, qdcount: 1, ancount: 0, nscount: 0, arcount: 1 });
    const plain = dns2Query('example.org', TYPE.TXT);
    expect(dns2Parse(buildTruncated(plain, parsedOk(plain))).header).toMatchObject({ tc: 1, arcount: 0 });
  });

  it('builds REFUSED with an Extended DNS Error, and leaves EDE out for a non-EDNS requester', () => {
    const msg = dns2Query('example.org', TYPE.A, { edns: {} });
    const p = dns2Parse(buildRcode(msg, parsedOk(msg), RCODE.REFUSED, { ede: { code: EDE.Prohibited, text: 'client 192.0.2.1 is not allowed' } }));
    expect(p.header).toMatchObject({ rcode: RCODE.REFUSED, qdcount: 1, arcount: 1 });
    expect(edeOf(p)).toEqual([{ ednsCode: 15, infoCode: EDE.Prohibited, extraText: 'client 192.0.2.1 is not allowed' }]);
    const plain = dns2Query('example.org', TYPE.A);
    const p2 = dns2Parse(buildRcode(plain, parsedOk(plain), RCODE.SERVFAIL, { ede: { code: EDE.NetworkError } }));
    expect(p2.header).toMatchObject({ rcode: RCODE.SERVFAIL, arcount: 0 });
  });

  it('writes an EDE with a code and no text', () => {
    const msg = dns2Query('example.org', TYPE.A, { edns: {} });
    const p = dns2Parse(buildRcode(msg, parsedOk(msg), RCODE.SERVFAIL, { ede: { code: EDE.NotReady } }));
    expect(edeOf(p)).toEqual([{ ednsCode: 15, infoCode: EDE.NotReady, extraText: '' }]);
  });

  it('cuts EDE text over 255 octets at a character boundary', () => {
    const msg = dns2Query('example.org', TYPE.A, { edns: { udp: 1232 } });
    const text = 'é'.repeat(200); // 400 octets
    const p = dns2Parse(buildRcode(msg, parsedOk(msg), RCODE.REFUSED, { ede: { code: EDE.Other, text } }));
    const got = edeOf(p)[0].extraText;
    expect(got).toBe('é'.repeat(127)); // 254 octets: one more would split a character
  });

  it('drops the EDE text (keeping the code) when it would push the answer past the requester limit', () => {
    const long = Array.from({ length: 4 }, (_, i) => String.fromCharCode(0x61 + i).repeat(60)).join('.');
    const msg = dns2Query(long, TYPE.A, { edns: { udp: 512 } });
    const q = parsedOk(msg);
    const addrs = Array.from({ length: 8 }, (_, i) => Buffer.from([192, 0, 2, i]));
    const out = buildAddresses(msg, q, 60, addrs, { ede: { code: EDE.Blocked, text: 'x'.repeat(200) } });
    const p = dns2Parse(out);
    expect(edeOf(p)).toEqual([{ ednsCode: 15, infoCode: EDE.Blocked, extraText: '' }]);
    expect(out.length).toBeLessThanOrEqual(udpResponseLimit(q));
  });

  it('builds a header-only answer when the question cannot be trusted', () => {
    const p = dns2Parse(buildHeaderOnly(0xabcd, 0x0110, RCODE.FORMERR));
    expect(p.header).toMatchObject({ id: 0xabcd, qr: 1, rd: 1, ra: 1, rcode: RCODE.FORMERR, qdcount: 0, ancount: 0, nscount: 0, arcount: 0 });
    expect((p.header as unknown as Flags).cd).toBe(1);
  });

  it('appends an OPT with EDE to a cached body that has none and bumps ARCOUNT', () => {
    const up = new Packet();
    up.header = { ...up.header, id: 5, qr: 1, rd: 1, ra: 1 } as Dns2Packet['header'];
    up.questions.push({ name: 'example.org', type: TYPE.A, class: CLASS.IN } as Dns2Packet['questions'][number]);
    up.answers.push({ name: 'example.org', type: TYPE.A, class: CLASS.IN, ttl: 30, address: '192.0.2.1' } as Dns2Packet['answers'][number]);
    const body = up.toBuffer();
    const msg = dns2Query('example.org', TYPE.A, { edns: { do: true } });
    const q = parsedOk(msg);
    const out = addEdnsOpt(body, q, { ede: { code: EDE.StaleAnswer, text: 'served stale' } });
    const p = dns2Parse(out);
    expect(p.header.arcount).toBe(1);
    expect(p.answers[0].address).toBe('192.0.2.1');
    expect(p.additionals[0]).toMatchObject({ type: TYPE.OPT, doFlag: true, class: EDNS_UDP_SIZE });
    expect(edeOf(p)).toEqual([{ ednsCode: 15, infoCode: EDE.StaleAnswer, extraText: 'served stale' }]);
    const plain = dns2Query('example.org', TYPE.A);
    expect(addEdnsOpt(body, parsedOk(plain))).toBe(body);
  });

  it('carries an extended rcode in the OPT it appends (BADCOOKIE stays 23, not 7)', () => {
    const body = Buffer.concat([header(5, 0x8180 | (23 & 0xf), 1, 0, 0, 0), question(encodeName('example.org'), TYPE.A)]);
    const q = parsedOk(dns2Query('example.org', TYPE.A, { edns: {} }));
    const inspected = inspectResponse(addEdnsOpt(body, q, undefined, 23));
    expect(inspected?.rcode).toBe(23);
    expect(inspectResponse(addEdnsOpt(body, q))?.rcode, 'without the rcode only the nibble is left').toBe(7);
  });

  it('builds an SOA record for an authority section that dns2 reads field by field', () => {
    const msg = dns2Query('nas.lan', TYPE.AAAA);
    const q = parsedOk(msg);
    const soa: SoaTemplate = { zone: 'nas.lan', ttl: 120, mname: 'hushdns.local', rname: 'hostmaster.hushdns.local', serial: 7, refresh: 3600, retry: 600, expire: 86400, minimum: 90 };
    const p = dns2Parse(buildRecords(msg, q, [], { authority: [soaRecord(soa)] }));
    expect(p.authorities[0]).toMatchObject({ name: 'nas.lan', type: TYPE.SOA, ttl: 90, primary: 'hushdns.local', admin: 'hostmaster.hushdns.local', serial: 7, refresh: 3600, retry: 600, expiration: 86400, minimum: 90 });
  });

  it('copies a non-QUERY opcode into answers built for it', () => {
    const msg = Buffer.concat([header(3, 0x0100, 1, 0, 0, 0), question(encodeName('example.org'), TYPE.A)]);
    const q = { ...parsedOk(msg), flags: (2 << 11) | 0x0100, opcode: 2 };
    expect(dns2Parse(buildRcode(msg, q, RCODE.NOTIMP)).header).toMatchObject({ opcode: 2, rcode: RCODE.NOTIMP });
  });

  it('reports the UDP limit a response must fit', () => {
    const limit = (o: QueryOpts) => udpResponseLimit(parsedOk(dns2Query('example.org', TYPE.A, o)));
    expect(limit({})).toBe(512);
    expect(limit({ edns: { udp: 4096 } })).toBe(1232);
    expect(limit({ edns: { udp: 1000 } })).toBe(1000);
  });
});

describe('encodeName', () => {
  it('encodes names, a trailing dot and the root', () => {
    expect(encodeName('Example.org').equals(Buffer.from('\x07Example\x03org\x00', 'latin1'))).toBe(true);
    expect(encodeName('example.org.').equals(encodeName('example.org'))).toBe(true);
    expect(encodeName('').equals(Buffer.from([0]))).toBe(true);
    expect(encodeName('.').equals(Buffer.from([0]))).toBe(true);
  });

  it('reads the escapes the parser writes', () => {
    expect(encodeName('a\\.b.c').equals(Buffer.from('\x03a.b\x01c\x00', 'latin1'))).toBe(true);
    expect(encodeName('\\092\\000x').equals(Buffer.from('\x03\\\x00x\x00', 'latin1'))).toBe(true);
  });

  it('rejects empty labels, labels over 63, names over 255 and non-Latin-1 text', () => {
    expect(() => encodeName('a..b')).toThrow(/empty label/);
    expect(() => encodeName('.a')).toThrow(/empty label/);
    expect(() => encodeName('a'.repeat(64) + '.org')).toThrow(/63/);
    expect(() => encodeName(Array.from({ length: 5 }, () => 'a'.repeat(63)).join('.'))).toThrow(/255/);
    expect(() => encodeName('bücher.example')).not.toThrow(); // ü is Latin-1: one octet
    expect(() => encodeName('例え.example')).toThrow(/Latin-1/);
    expect(() => encodeName('a\\9')).toThrow(/DDD/);
    expect(() => encodeName('a\\')).toThrow(/backslash/);
  });
});

// ---- inspectResponse and friends ------------------------------------------------------------------

function dns2Response(build: (p: Dns2Packet) => void, id = 0x1111): Buffer {
  const p = new Packet();
  p.header = { ...p.header, id, qr: 1, rd: 1, ra: 1 } as Dns2Packet['header'];
  build(p);
  return p.toBuffer();
}

type AnyRr = Dns2Packet['answers'][number];
const res = (r: Record<string, unknown>): AnyRr => ({ class: CLASS.IN, ...r }) as unknown as AnyRr;

describe('inspectResponse', () => {
  it('walks a compressed answer and reports TTL offsets, min TTL and answer types', () => {
    const msg = dns2Response((p) => {
      p.questions.push({ name: 'www.example.org', type: TYPE.A, class: CLASS.IN } as Dns2Packet['questions'][number]);
      p.answers.push(res({ name: 'www.example.org', type: TYPE.A, ttl: 300, address: '192.0.2.1' }));
      p.answers.push(res({ name: 'www.example.org', type: TYPE.A, ttl: 120, address: '192.0.2.2' }));
      p.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: 1232, doFlag: true }));
    });
    expect(msg.readUInt16BE(msg.indexOf(Buffer.from([0xc0, 0x0c])))).toBe(0xc00c); // dns2 compressed the owners
    const info = inspectResponse(msg);
    expect(info).toMatchObject({ id: 0x1111, rcode: 0, tc: false, qname: 'www.example.org', qtype: TYPE.A, qclass: CLASS.IN, ancount: 2, arcount: 1, minTtl: 120, negativeTtl: null, answerTypes: [TYPE.A, TYPE.A], udpSize: 1232, dnssecOk: true });
    expect(info?.ttlOffsets).toHaveLength(2);
    expect(info?.optEnd).toBe(msg.length);
    expect(info?.optEnd! - info?.optStart!).toBe(11);
  });

  it('collects every CNAME target in a chain, lowercased', () => {
    const msg = dns2Response((p) => {
      p.questions.push({ name: 'www.example.org', type: TYPE.A, class: CLASS.IN } as Dns2Packet['questions'][number]);
      p.answers.push(res({ name: 'www.example.org', type: TYPE.CNAME, ttl: 60, domain: 'Shop.Example.NET' }));
      p.answers.push(res({ name: 'shop.example.net', type: TYPE.CNAME, ttl: 30, domain: 'tracker.cdn.example.net' }));
      p.answers.push(res({ name: 'tracker.cdn.example.net', type: TYPE.A, ttl: 90, address: '192.0.2.3' }));
    });
    const info = inspectResponse(msg);
    expect(info?.cnameTargets).toEqual(['shop.example.net', 'tracker.cdn.example.net']);
    expect(info?.answerTypes).toEqual([TYPE.CNAME, TYPE.CNAME, TYPE.A]);
    expect(info?.minTtl).toBe(30);
  });

  it('takes the negative TTL from the SOA in authority as min(TTL, MINIMUM)', () => {
    const soa = (ttl: number, minimum: number) =>
      dns2Response((p) => {
        p.header.rcode = RCODE.NXDOMAIN;
        p.questions.push({ name: 'nope.example.org', type: TYPE.A, class: CLASS.IN } as Dns2Packet['questions'][number]);
        p.authorities.push(res({ name: 'example.org', type: TYPE.SOA, ttl, primary: 'ns.example.org', admin: 'hostmaster.example.org', serial: 1, refresh: 2, retry: 3, expiration: 4, minimum }));
      });
    expect(inspectResponse(soa(3600, 300))).toMatchObject({ rcode: 3, negativeTtl: 300, minTtl: 3600 });
    expect(inspectResponse(soa(60, 300))).toMatchObject({ negativeTtl: 60, minTtl: 60 });
  });

  it('reports the extended rcode and an upstream EDE from the OPT', () => {
    const msg = dns2Query('example.org', TYPE.A, { edns: {} });
    const q = parsedOk(msg);
    const badvers = inspectResponse(buildRcode(msg, q, RCODE.BADVERS));
    expect(badvers?.rcode).toBe(RCODE.BADVERS);
    const withEde = inspectResponse(buildRcode(msg, q, RCODE.SERVFAIL, { ede: { code: EDE.NetworkError, text: 'upstream down' } }));
    expect(withEde?.ede).toEqual({ code: EDE.NetworkError, text: 'upstream down' });
  });

  it('reads answer and authority records back with every name decompressed, ready to splice into another answer', () => {
    const up = new Packet();
    up.header = { ...up.header, id: 9, qr: 1, rd: 1, ra: 1 } as Dns2Packet['header'];
    up.questions.push({ name: 'www.example.org', type: TYPE.MX, class: CLASS.IN } as Dns2Packet['questions'][number]);
    up.answers.push({ name: 'www.example.org', type: TYPE.CNAME, class: CLASS.IN, ttl: 30, domain: 'mail.example.org' } as Dns2Packet['answers'][number]);
    up.answers.push({ name: 'mail.example.org', type: TYPE.MX, class: CLASS.IN, ttl: 40, exchange: 'mx1.example.org', priority: 10 } as Dns2Packet['answers'][number]);
    up.authorities.push({ name: 'example.org', type: TYPE.SOA, class: CLASS.IN, ttl: 50, primary: 'ns.example.org', admin: 'h.example.org', serial: 1, refresh: 2, retry: 3, expiration: 4, minimum: 5 } as Dns2Packet['authorities'][number]);
    const msg = up.toBuffer();
    const info = inspectResponse(msg)!;
    const records = readRecords(msg, info)!;
    expect(records.answers.map((r) => [r.name, r.type, r.ttl])).toEqual([
      ['www.example.org', TYPE.CNAME, 30],
      ['mail.example.org', TYPE.MX, 40],
    ]);
    // No pointer survives in RDATA: the names read the same in a message of their own.
    expect(records.answers[0].rdata.equals(encodeName('mail.example.org'))).toBe(true);
    expect(records.answers[1].rdata.equals(Buffer.concat([u16(10), encodeName('mx1.example.org')]))).toBe(true);
    const alias = dns2Query('alias.home.example', TYPE.MX);
    const spliced = dns2Parse(buildRecords(alias, parsedOk(alias), records.answers, { authority: records.authority }));
    expect(spliced.answers.map((a) => a.domain ?? a.exchange)).toEqual(['mail.example.org', 'mx1.example.org']);
    expect(spliced.authorities[0]).toMatchObject({ name: 'example.org', primary: 'ns.example.org', admin: 'h.example.org', minimum: 5 });
  });

  it('handles an OPT in the middle of additional: stripOpt keeps later pointers valid', () => {
    const msg = dns2Response((p) => {
      p.questions.push({ name: 'example.org', type: TYPE.NS, class: CLASS.IN } as Dns2Packet['questions'][number]);
      p.answers.push(res({ name: 'example.org', type: TYPE.NS, ttl: 100, ns: 'ns1.example.org' }));
      p.answers.push(res({ name: 'example.org', type: TYPE.NS, ttl: 100, ns: 'ns2.example.org' }));
      p.additionals.push(res({ name: 'ns1.example.org', type: TYPE.A, ttl: 200, address: '192.0.2.53' }));
      p.additionals.push(Packet.Resource.EDNS([Packet.Resource.EDNS.EDE(3, 'padding')], { udpPayloadSize: 1232 }));
      p.additionals.push(res({ name: 'ns3.example.net', type: TYPE.AAAA, ttl: 300, address: '2001:db8::53' }));
      p.additionals.push(res({ name: 'ns3.example.net', type: TYPE.A, ttl: 400, address: '192.0.2.54' })); // owner points after the OPT
      p.additionals.push(res({ name: 'x.ns3.example.net', type: TYPE.MX, ttl: 500, priority: 5, exchange: 'mx.ns3.example.net' }));
    });
    const info = inspectResponse(msg)!;
    expect(info).not.toBeNull();
    expect(info.optStart).toBeGreaterThan(info.questionEnd);
    expect(info.optEnd).toBeLessThan(msg.length);
    expect(info.ttlOffsets).toHaveLength(6);
    const stripped = stripOpt(msg, info);
    expect(stripped.length).toBe(msg.length - (info.optEnd - info.optStart));
    const p = dns2Parse(stripped);
    expect(p.header.arcount).toBe(4);
    expect(p.additionals.map((a) => [a.name, a.address ?? a.exchange])).toEqual([
      ['ns1.example.org', '192.0.2.53'],
      ['ns3.example.net', '2001:db8::53'],
      ['ns3.example.net', '192.0.2.54'],
      ['x.ns3.example.net', 'mx.ns3.example.net'],
    ]);
    // Re-based TTL offsets address the stripped copy.
    const offsets = strippedTtlOffsets(info);
    writeTtls(stripped, offsets, 50);
    expect(dns2Parse(stripped).additionals.map((a) => a.ttl)).toEqual([150, 250, 350, 450]);
    const again = inspectResponse(stripped)!;
    expect(again.optStart).toBe(-1);
    expect(again.ttlOffsets).toEqual(offsets);
  });

  it('rewrites TTLs in place at the reported offsets, never below the floor', () => {
    const msg = dns2Response((p) => {
      p.questions.push({ name: 'www.example.org', type: TYPE.A, class: CLASS.IN } as Dns2Packet['questions'][number]);
      p.answers.push(res({ name: 'www.example.org', type: TYPE.CNAME, ttl: 100, domain: 'cdn.example.org' }));
      p.answers.push(res({ name: 'cdn.example.org', type: TYPE.A, ttl: 40, address: '192.0.2.1' }));
      p.authorities.push(res({ name: 'example.org', type: TYPE.NS, ttl: 1000, ns: 'ns.example.org' }));
      p.additionals.push(res({ name: 'ns.example.org', type: TYPE.A, ttl: 25, address: '192.0.2.2' }));
      p.additionals.push(Packet.Resource.EDNS([], {}));
    });
    const info = inspectResponse(msg)!;
    expect(info.ttlOffsets).toHaveLength(4);
    writeTtls(msg, info.ttlOffsets, 30.9, 5);
    const p = dns2Parse(msg);
    expect([...p.answers, ...p.authorities, ...p.additionals].filter((r) => r.type !== TYPE.OPT).map((r) => r.ttl)).toEqual([70, 10, 970, 5]);
    expect(p.additionals.find((r) => r.type === TYPE.OPT)?.class).toBe(4096); // OPT untouched
    writeTtls(msg, info.ttlOffsets, 1e9);
    expect(dns2Parse(msg).answers.map((r) => r.ttl)).toEqual([0, 0]);
  });

  it('accepts pointers to any label boundary of an earlier name', () => {
    const q = question(encodeName('www.example.org'), TYPE.A);
    const msg = Buffer.concat([
      header(1, 0x8180, 1, 2, 0, 0),
      q,
      rr(ptr(16), TYPE.CNAME, CLASS.IN, 5, Buffer.concat([Buffer.from([3]), Buffer.from('cdn'), ptr(24)])), // example.org CNAME cdn.org
      rr(ptr(33 + 12), TYPE.A, CLASS.IN, 5, Buffer.from([192, 0, 2, 1])), // owner: the CNAME target (RDATA of the RR at 33)
    ]);
    expect(inspectResponse(msg)).toMatchObject({ cnameTargets: ['cdn.org'], answerTypes: [TYPE.CNAME, TYPE.A] });
    expect(dns2Parse(msg).answers.map((r) => r.name)).toEqual(['example.org', 'cdn.org']);
  });

  it('accepts a response with no question (some servers answer FORMERR that way)', () => {
    const info = inspectResponse(header(1, 0x8001, 0, 0, 0, 0));
    expect(info).toMatchObject({ qdcount: 0, qname: '', qtype: 0, questionEnd: 12, rcode: 1, minTtl: null });
  });

  it('returns null for garbage instead of throwing', () => {
    const q = question(encodeName('example.org'), TYPE.A);
    const a = (owner: Buffer, type: number = TYPE.A, rdata = Buffer.from([1, 2, 3, 4])) => rr(owner, type, CLASS.IN, 1, rdata);
    const cases: [string, Buffer][] = [
      ['too short', Buffer.alloc(11)],
      ['a query, not a response', Buffer.concat([header(1, 0, 1, 0, 0, 0), q])],
      ['two questions', Buffer.concat([header(1, 0x8000, 2, 0, 0, 0), q, q])],
      ['pointer loop in an answer owner', Buffer.concat([header(1, 0x8000, 1, 1, 0, 0), q, a(ptr(29))])],
      ['pointer to itself via a label', Buffer.concat([header(1, 0x8000, 1, 1, 0, 0), q, a(Buffer.concat([Buffer.from([1, 0x61]), ptr(29)]))])],
      ['forward pointer', Buffer.concat([header(1, 0x8000, 1, 1, 0, 0), q, a(ptr(60))])],
      ['pointer past the end', Buffer.concat([header(1, 0x8000, 1, 1, 0, 0), q, a(ptr(0x3fff))])],
      ['reserved label type', Buffer.concat([header(1, 0x8000, 1, 1, 0, 0), q, a(Buffer.from([0x41, 0x61, 0]))])],
      ['name over 255 octets', Buffer.concat([header(1, 0x8000, 1, 1, 0, 0), q, a(Buffer.concat([...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([60]), Buffer.alloc(60, 0x61)])), Buffer.from([0])]))])],
      ['truncated RR', Buffer.concat([header(1, 0x8000, 1, 1, 0, 0), q, a(ptr(12)).subarray(0, 12)])],
      ['RDATA past the end', Buffer.concat([header(1, 0x8000, 1, 1, 0, 0), q, a(ptr(12)).subarray(0, 14)])],
      ['A with 5 octets', Buffer.concat([header(1, 0x8000, 1, 1, 0, 0), q, a(ptr(12), TYPE.A, Buffer.alloc(5))])],
      ['CNAME RDATA longer than its name', Buffer.concat([header(1, 0x8000, 1, 1, 0, 0), q, a(ptr(12), TYPE.CNAME, Buffer.from([0, 0]))])],
      ['OPT in the answer section', Buffer.concat([header(1, 0x8000, 1, 1, 0, 0), q, opt(1232, 0)])],
      ['two OPTs', Buffer.concat([header(1, 0x8000, 1, 0, 0, 2), q, opt(1232, 0), opt(1232, 0)])],
      ['OPT option overrun', Buffer.concat([header(1, 0x8000, 1, 0, 0, 1), q, opt(1232, 0, Buffer.from([0, 15, 0, 9, 0]))])],
      ['SOA too short', Buffer.concat([header(1, 0x8003, 1, 0, 1, 0), q, a(ptr(12), TYPE.SOA, Buffer.from([0, 0, 1]))])],
      ['pointer into a mid-section OPT', Buffer.concat([header(1, 0x8000, 1, 0, 0, 2), q, opt(1232, 0), a(ptr(29))])],
      ['pointer into the middle of a label', Buffer.concat([header(1, 0x8000, 1, 1, 0, 0), q, a(ptr(13))])],
      // The second owner would read the first record's TTL octets as a name: a TTL rewrite would rename it.
      ['pointer into a TTL field', Buffer.concat([header(1, 0x8000, 1, 2, 0, 0), q, a(ptr(12)), a(ptr(29 + 6))])],
      ['pointer into A RDATA', Buffer.concat([header(1, 0x8000, 1, 2, 0, 0), q, a(ptr(12), TYPE.A, Buffer.from([0, 0, 0, 0])), a(ptr(29 + 12))])],
    ];
    for (const [what, msg] of cases) {
      expect(inspectResponse(msg), what).toBeNull();
    }
  });
});

describe('questionMatches', () => {
  const req = buildQuery(1, 'wWw.Example.org', TYPE.HTTPS, CLASS.IN, { rd: true, cd: false, dnssecOk: false, udpSize: 1232 });
  const reqQ = parsedOk(req);
  const respFor = (name: string, type: number) => dns2Response((p) => p.questions.push({ name, type, class: CLASS.IN } as Dns2Packet['questions'][number]));

  it('matches the same question in another case', () => {
    const resp = respFor('www.EXAMPLE.org', TYPE.HTTPS);
    expect(questionMatches(resp, inspectResponse(resp)!, req, reqQ.questionEnd)).toBe(true);
  });

  it('rejects another name, another type (even one whose octet differs only by 0x20) and no question', () => {
    for (const resp of [respFor('www.example.com', TYPE.HTTPS), respFor('www.example.org', 97), respFor('www.example.org', TYPE.A)]) {
      expect(questionMatches(resp, inspectResponse(resp)!, req, reqQ.questionEnd)).toBe(false);
    }
    const none = header(1, 0x8000, 0, 0, 0, 0);
    expect(questionMatches(none, inspectResponse(none)!, req, reqQ.questionEnd)).toBe(false);
  });
});

describe('buildQuery', () => {
  it('writes a query dns2 and parseQuery read, case kept, with OPT and DO', () => {
    const msg = buildQuery(0x2222, 'ExAmple.ORG', TYPE.AAAA, CLASS.IN, { rd: true, cd: true, dnssecOk: true, udpSize: 1232 });
    const p = dns2Parse(msg);
    expect(p.header).toMatchObject({ id: 0x2222, qr: 0, rd: 1, qdcount: 1, arcount: 1 });
    expect((p.header as unknown as Flags).cd).toBe(1);
    expect(p.questions[0]).toMatchObject({ name: 'ExAmple.ORG', type: TYPE.AAAA, class: CLASS.IN });
    expect(p.additionals[0]).toMatchObject({ class: 1232, doFlag: true });
    expect(parsedOk(msg)).toMatchObject({ id: 0x2222, name: 'example.org', rd: true, cd: true, edns: { udpSize: 1232, version: 0, dnssecOk: true } });
  });

  it('leaves the OPT out when udpSize is 0', () => {
    const msg = buildQuery(1, 'example.org', TYPE.A, CLASS.IN, { rd: false, cd: false, dnssecOk: false, udpSize: 0 });
    expect(dns2Parse(msg).header).toMatchObject({ rd: 0, arcount: 0 });
    expect(parsedOk(msg).edns).toBeNull();
  });
});
