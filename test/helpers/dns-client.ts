// Real clients for tests: raw UDP/TCP exchanges (any bytes, any flags) decoded with dns2's Packet,
// so assertions read what a third-party parser sees.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dns2 from 'dns2';

const { Packet } = dns2;

export type DecodedPacket = ReturnType<typeof Packet.parse>;

export interface QueryOptions {
  id?: number;
  rd?: boolean;
  cd?: boolean;
  ad?: boolean;
  /** Add an OPT record with this UDP size (and DO bit). */
  edns?: { udpSize?: number; do?: boolean; version?: number } | null;
  qclass?: number;
  opcode?: number;
}

const TYPES: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, AAAA: 28, SRV: 33, DS: 43, DNSKEY: 48, SVCB: 64, HTTPS: 65, IXFR: 251, AXFR: 252, ANY: 255 };

/** A query message, hand-built so tests control every bit. */
export function makeQuery(name: string, type: string | number, opts: QueryOptions = {}): Buffer {
  const labels = name === '' || name === '.' ? [] : name.replace(/\.$/, '').split('.');
  const qname = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([Buffer.byteLength(l)]), Buffer.from(l)])), Buffer.from([0])]);
  const edns = opts.edns === undefined ? { udpSize: 1232 } : opts.edns;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(opts.id ?? Math.floor(Math.random() * 65536), 0);
  header[2] = ((opts.opcode ?? 0) << 3) | (opts.rd === false ? 0 : 1);
  header[3] = (opts.cd ? 0x10 : 0) | (opts.ad ? 0x20 : 0);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(edns ? 1 : 0, 10);
  const q = Buffer.alloc(4);
  const code = typeof type === 'number' ? type : TYPES[type];
  if (code === undefined) throw new Error(`makeQuery: no code for type ${type}; pass the number`);
  q.writeUInt16BE(code, 0);
  q.writeUInt16BE(opts.qclass ?? 1, 2);
  const parts = [header, qname, q];
  if (edns) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(edns.udpSize ?? 1232, 3);
    opt[6] = edns.version ?? 0;
    opt.writeUInt16BE(edns.do ? 0x8000 : 0, 7);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

export function udpExchange(host: string, port: number, msg: Buffer, timeoutMs = 2000, bindAddress?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`no UDP answer from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('message', (m) => {
      clearTimeout(timer);
      sock.close();
      resolve(m);
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      sock.close();
      reject(e);
    });
    const send = () => sock.send(msg, port, host);
    if (bindAddress) sock.bind(0, bindAddress, send);
    else send();
  });
}

/** Sends several messages on one TCP connection (pipelined) and collects as many answers. */
export function tcpExchange(host: string, port: number, msgs: Buffer[], timeoutMs = 3000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    const answers: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`only ${answers.length} of ${msgs.length} TCP answers from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('connect', () => {
      sock.write(Buffer.concat(msgs.map((m) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]))));
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        answers.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (answers.length >= msgs.length) {
        clearTimeout(timer);
        sock.end();
        resolve(answers);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export function decode(msg: Buffer): DecodedPacket {
  return Packet.parse(msg);
}

export function rcodeOf(msg: Buffer): number {
  return msg[3] & 0x0f;
}

/** Extended DNS Error info-code from the OPT record, if any. */
export function edeOf(msg: Buffer): { code: number; text: string } | null {
  const i = findOpt(msg);
  if (i < 0) return null;
  let o = i + 11;
  const end = o + msg.readUInt16BE(i + 9);
  while (o + 4 <= end) {
    const code = msg.readUInt16BE(o);
    const len = msg.readUInt16BE(o + 2);
    if (code === 15) return { code: msg.readUInt16BE(o + 4), text: msg.subarray(o + 6, o + 4 + len).toString('utf8') };
    o += 4 + len;
  }
  return null;
}

/** Offset of the OPT RR (its root owner byte), -1 when absent. Walks the message properly. */
export function findOpt(msg: Buffer): number {
  let o = 12;
  const skipName = () => {
    for (;;) {
      const len = msg[o];
      if (len === 0) return void o++;
      if ((len & 0xc0) === 0xc0) return void (o += 2);
      o += len + 1;
    }
  };
  const qd = msg.readUInt16BE(4);
  for (let i = 0; i < qd; i++) {
    skipName();
    o += 4;
  }
  const rrs = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  for (let i = 0; i < rrs; i++) {
    const start = o;
    skipName();
    const type = msg.readUInt16BE(o);
    const rdlen = msg.readUInt16BE(o + 8);
    if (type === 41) return start;
    o += 10 + rdlen;
  }
  return -1;
}

/** IPv4/IPv6 addresses in the answer section, as text. */
export function addressesOf(msg: Buffer): string[] {
  return decode(msg)
    .answers.filter((a: { type: number }) => a.type === 1 || a.type === 28)
    .map((a: { address?: string }) => a.address ?? '');
}
