// The test suite's controllable upstream resolver: plain DNS over UDP and TCP on one random
// loopback port, and optionally DNS over TLS and DNS over HTTP(S). Tests tell it, per name or by
// default, how to answer (records, NXDOMAIN, SERVFAIL…) and how to misbehave (delay, drop,
// truncate, forged replies, garbage), change that at runtime, and read back every query it got.
//
//   const up = await startFakeUpstream();
//   up.set('www.example.org', { a: ['192.0.2.10'], ttl: 60 });
//   up.set('gone.example.org', { rcode: 'NXDOMAIN', soa: { minimum: 30 } });
//   up.set('slow.example.org', { delayMs: 300 });
//   … query up.udpUrl …
//   expect(up.queriesFor('www.example.org')[0].do).toBe(true);
//   await up.stop();
//
// Answers are built with dns2's Packet; the stream framing is written here independently of
// server/upstream so the two sides cannot share a bug.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import dns2 from 'dns2';

const { Packet } = dns2;
type Packet = InstanceType<typeof Packet>;
type Resource = Packet['answers'][number];

export type FakeProtocol = 'udp' | 'tcp' | 'tls' | 'http' | 'https';

/**
 * Replies sent before the real answer, each one something a resolver must ignore:
 * - 'wrong-id': a spoofed answer (SPOOFED_A / SPOOFED_AAAA) with another ID
 * - 'wrong-question': a spoofed answer with the right ID for a different name
 * - 'other-port': a spoofed answer, right ID and question, from another UDP port (UDP only)
 * - 'garbage': the right ID followed by a malformed message (a self-referencing name pointer)
 * - 'compressed-question': a spoofed answer, right ID, whose question name ends in a compression
 *   pointer to a copy of its parent placed after the question (same name when pointers are
 *   followed, but a different length and an illegal forward pointer)
 * Over HTTP there is one response per request, so the first forgery replaces the answer.
 */
export type Forgery = 'wrong-id' | 'wrong-question' | 'other-port' | 'garbage' | 'compressed-question';

export interface FakeBehaviour {
  /** Addresses for A queries (default for names without a rule: 192.0.2.1). */
  a?: string[];
  /** Addresses for AAAA queries (default for names without a rule: 2001:db8::1). */
  aaaa?: string[];
  /** TXT strings (one record each). */
  txt?: string[];
  /** CNAME chain from the asked name: name → cname[0] → cname[1] …; records above belong to the last. */
  cname?: string[];
  /** A large A answer: this many addresses from 198.18.0.0/15 (at most 4000). */
  manyA?: number;
  /** TTL of every answer record (default 300). */
  ttl?: number;
  /** A number above 15 is an extended rcode: its high bits go into the OPT (when the query had one). */
  rcode?: 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' | number;
  /** Set AD in the reply when the query carried AD or DO, as a validating resolver does (RFC 6840 §5.7). */
  authenticated?: boolean;
  /**
   * SOA in the authority section of negative answers (NXDOMAIN, or NOERROR without records of
   * the asked type). zone defaults to the asked name's parent; ttl and minimum to 60.
   */
  soa?: { zone?: string; ttl?: number; minimum?: number };
  /** Wait this long before replying. */
  delayMs?: number;
  /** Never reply, over any protocol. */
  drop?: boolean;
  /** Over UDP reply with TC=1 and no records; the full answer comes over TCP. */
  truncateUdp?: boolean;
  /**
   * Send UDP answers larger than the client's advertised size (512 without EDNS) whole.
   * By default the fake truncates them, as a real server would.
   */
  ignoreUdpSize?: boolean;
  forged?: Forgery[];
  /** Send the real answer after the forgeries (default true). */
  answer?: boolean;
  /** DoH only: reply with this HTTP status / content-type instead of 200 application/dns-message. */
  httpStatus?: number;
  httpContentType?: string;
}

export interface ReceivedQuery {
  /** As it arrived (case preserved); '' when the message had no question. */
  name: string;
  type: number;
  typeName: string;
  id: number;
  protocol: FakeProtocol;
  sourceAddress: string;
  sourcePort: number;
  flags: { rd: boolean; cd: boolean; ad: boolean };
  /** An OPT record was present. */
  edns: boolean;
  /** The DNSSEC OK bit of the OPT record. */
  do: boolean;
  /** Advertised UDP payload size from the OPT record. */
  udpSize?: number;
  /** Which TCP/TLS connection or HTTP session carried it (numbered from 1); 0 for UDP. */
  connection: number;
  /** '1.1' or '2.0' for DoH. */
  httpVersion?: string;
  at: number;
}

export interface FakeUpstreamOptions {
  host?: '127.0.0.1' | '::1';
  /** Also serve DNS over TLS with this certificate. */
  dot?: { key: Buffer | string; cert: Buffer | string };
  /** Also serve DoH: 'http' for plain HTTP/1.1, or a certificate for HTTPS with HTTP/2 and HTTP/1.1. */
  doh?: 'http' | { key: Buffer | string; cert: Buffer | string };
}

export interface FakeUpstream {
  readonly host: string;
  /** UDP and TCP port. */
  readonly port: number;
  readonly udpUrl: string;
  readonly tcpUrl: string;
  /** tls://SERVERNAME@HOST:PORT when started with `dot` (servername defaults to dns.example.org). */
  dotUrl(servername?: string): string;
  /** http(s)://HOST:PORT/dns-query when started with `doh`. */
  readonly dohUrl: string;
  readonly dotPort: number;
  readonly dohPort: number;
  /** The port forged 'other-port' replies come from. */
  readonly otherPort: number;
  /** Every query received, oldest first. */
  readonly queries: ReceivedQuery[];
  queriesFor(name: string): ReceivedQuery[];
  /** Behaviour for one name (case-insensitive, exact match); replaces an earlier rule for it. */
  set(name: string, behaviour: FakeBehaviour): void;
  /** Behaviour for names without a rule. */
  setDefault(behaviour: FakeBehaviour): void;
  /** Forget all rules and recorded queries. */
  reset(): void;
  /** Close every open TCP / TLS / HTTP connection from the server side. */
  closeConnections(): void;
  /** The reply engine itself, for tests that bring their own transport. */
  replies(query: Buffer, protocol: FakeProtocol): Promise<Buffer[]>;
  stop(): Promise<void>;
}

export const SPOOFED_A = '203.0.113.66';
export const SPOOFED_AAAA = '2001:db8:bad::66';
export const DEFAULT_A = '192.0.2.1';
export const DEFAULT_AAAA = '2001:db8::1';

const RCODES = { NOERROR: 0, NXDOMAIN: 3, SERVFAIL: 2, REFUSED: 5 } as const;
const T = Packet.TYPE;
const MAX_MANY_A = 4000;

interface Outgoing {
  bytes: Buffer;
  fromOtherPort: boolean;
}

interface Plan {
  behaviour: FakeBehaviour;
  forged: Outgoing[];
  answer: Buffer | null;
}

export async function startFakeUpstream(opts: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const host = opts.host ?? '127.0.0.1';
  const udpType = host === '::1' ? 'udp6' : 'udp4';
  const rules = new Map<string, FakeBehaviour>();
  let fallback: FakeBehaviour = {};
  const queries: ReceivedQuery[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  const connectionIds = new WeakMap<object, number>();
  let connectionCount = 0;
  let stopped = false;

  const connectionId = (key: object): number => {
    let id = connectionIds.get(key);
    if (id === undefined) {
      id = ++connectionCount;
      connectionIds.set(key, id);
    }
    return id;
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  /** Decides what to send for one query, after any delay; null when it is to be dropped. */
  async function plan(query: Buffer, protocol: FakeProtocol, source: { address: string; port: number; connection: number; httpVersion?: string }): Promise<Plan | null> {
    let request: Packet;
    try {
      request = Packet.parse(query);
    } catch {
      return null;
    }
    const question = request.questions[0];
    const opt = request.additionals.find((r) => r.type === T.EDNS);
    const record: ReceivedQuery = {
      name: question?.name ?? '',
      type: question?.type ?? 0,
      typeName: question ? Packet.typeName(question.type) : '',
      id: request.header.id,
      protocol,
      sourceAddress: source.address,
      sourcePort: source.port,
      flags: { rd: request.header.rd === 1, cd: flag(request.header, 'cd'), ad: flag(request.header, 'ad') },
      edns: opt !== undefined,
      do: opt?.doFlag === true,
      connection: source.connection,
      at: Date.now(),
      ...(opt !== undefined ? { udpSize: opt.class } : {}),
      ...(source.httpVersion !== undefined ? { httpVersion: source.httpVersion } : {}),
    };
    queries.push(record);
    const behaviour = (question && rules.get(question.name.toLowerCase())) ?? fallback;
    if (behaviour.drop) return null;
    if (behaviour.delayMs) await sleep(behaviour.delayMs);
    if (stopped) return null;

    let answer: Buffer | null = behaviour.answer === false ? null : buildAnswer(request, behaviour);
    if (answer !== null && protocol === 'udp') {
      const limit = Math.max(512, opt?.class ?? 512);
      if (behaviour.truncateUdp || (answer.length > limit && !behaviour.ignoreUdpSize)) answer = truncated(request, opt !== undefined);
    }
    const forged = (behaviour.forged ?? []).map((kind) => ({ bytes: forge(request, kind), fromOtherPort: kind === 'other-port' }));
    return { behaviour, forged, answer };
  }

  async function replies(query: Buffer, protocol: FakeProtocol): Promise<Buffer[]> {
    const p = await plan(query, protocol, { address: '', port: 0, connection: 0 });
    if (p === null) return [];
    return [...p.forged.map((f) => f.bytes), ...(p.answer !== null ? [p.answer] : [])];
  }

  // --- TCP and TLS: length-prefixed messages, each handled on its own so replies can overtake --
  const onStream = (protocol: 'tcp' | 'tls') => (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const connection = connectionId(socket);
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const msg = Buffer.from(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
        buffered = buffered.subarray(2 + msg.length);
        void plan(msg, protocol, { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, connection }).then((p) => {
          if (p === null || socket.destroyed) return;
          for (const f of p.forged) if (!f.fromOtherPort) socket.write(lengthPrefixed(f.bytes));
          if (p.answer !== null) socket.write(lengthPrefixed(p.answer));
        });
      }
    });
  };

  // --- UDP (and TCP on the same port) ----------------------------------------------------------------------------------
  const { udp, tcp, port } = await bindUdpAndTcp(host, onStream('tcp'));
  const otherUdp = createSocket(udpType);
  await bindUdp(otherUdp, host, 0);
  udp.on('message', (msg: Buffer, from: RemoteInfo) => {
    void plan(msg, 'udp', { address: from.address, port: from.port, connection: 0 }).then((p) => {
      if (p === null || stopped) return;
      for (const f of p.forged) (f.fromOtherPort ? otherUdp : udp).send(f.bytes, from.port, from.address);
      if (p.answer !== null) udp.send(p.answer, from.port, from.address);
    });
  });

  let tlsServer: TlsServer | null = null;
  let dotPort = 0;
  if (opts.dot) {
    tlsServer = createTlsServer({ key: opts.dot.key, cert: opts.dot.cert }, onStream('tls'));
    dotPort = await listen(tlsServer, host);
  }

  // --- DoH -------------------------------------------------------------------------------------
  let httpServer: HttpServer | Http2SecureServer | null = null;
  let dohPort = 0;
  let dohScheme = 'http';
  const onHttp = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
    const session = req.httpVersion === '2.0' ? (req as Http2ServerRequest).stream.session : undefined;
    const connection = connectionId(session ?? req.socket);
    void readDohQuery(req).then(async (query) => {
      if (query === null) return respond(res, 400, 'text/plain', Buffer.from('expected a DNS message'));
      const source = { address: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0, connection, httpVersion: req.httpVersion };
      const p = await plan(query, dohScheme === 'https' ? 'https' : 'http', source);
      if (p === null) return; // dropped: the client times out
      const body = p.forged.find((f) => !f.fromOtherPort)?.bytes ?? p.answer;
      if (body === null) return;
      respond(res, p.behaviour.httpStatus ?? 200, p.behaviour.httpContentType ?? 'application/dns-message', body);
    });
  };
  if (opts.doh === 'http') {
    httpServer = createHttpServer(onHttp);
  } else if (opts.doh) {
    dohScheme = 'https';
    httpServer = createSecureServer({ key: opts.doh.key, cert: opts.doh.cert, allowHTTP1: true }, onHttp);
  }
  if (httpServer !== null) {
    httpServer.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    dohPort = await listen(httpServer, host);
  }

  const bracketed = host === '::1' ? '[::1]' : host;
  return {
    host,
    port,
    udpUrl: `udp://${bracketed}:${port}`,
    tcpUrl: `tcp://${bracketed}:${port}`,
    dotUrl: (servername = 'dns.example.org') => {
      if (tlsServer === null) throw new Error('startFakeUpstream was called without the dot option');
      return `tls://${servername}@${bracketed}:${dotPort}`;
    },
    get dohUrl() {
      if (httpServer === null) throw new Error('startFakeUpstream was called without the doh option');
      return `${dohScheme}://${dohScheme === 'https' ? 'localhost' : bracketed}:${dohPort}/dns-query`;
    },
    dotPort,
    dohPort,
    otherPort: (otherUdp.address() as { port: number }).port,
    queries,
    queriesFor: (name) => queries.filter((q) => q.name.toLowerCase() === name.toLowerCase()),
    set: (name, behaviour) => void rules.set(name.toLowerCase(), behaviour),
    setDefault: (behaviour) => {
      fallback = behaviour;
    },
    reset: () => {
      rules.clear();
      fallback = {};
      queries.length = 0;
    },
    closeConnections: () => {
      for (const s of sockets) s.destroy();
    },
    replies,
    stop: async () => {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      const closers: Promise<void>[] = [closeServer(tcp), closeUdp(udp), closeUdp(otherUdp)];
      if (tlsServer !== null) closers.push(closeServer(tlsServer));
      if (httpServer !== null) closers.push(closeServer(httpServer));
      await Promise.all(closers);
    },
  };
}

// --- building messages -----------------------------------------------------------------------

function buildAnswer(request: Packet, b: FakeBehaviour): Buffer {
  const response = baseResponse(request);
  const rcode = typeof b.rcode === 'number' ? b.rcode : RCODES[b.rcode ?? 'NOERROR'];
  response.header.rcode = rcode;
  const opt = request.additionals.find((r) => r.type === T.EDNS);
  if (b.authenticated && (flag(request.header, 'ad') || opt?.doFlag === true)) (response.header as unknown as Record<string, number>).ad = 1;
  const question = request.questions[0];
  if (question === undefined || rcode === RCODES.SERVFAIL || rcode === RCODES.REFUSED) return response.toBuffer();
  const ttl = b.ttl ?? 300;
  let owner = question.name;
  for (const target of b.cname ?? []) {
    response.answers.push(rr({ name: owner, type: T.CNAME, ttl, domain: target }));
    owner = target;
  }
  if (rcode === RCODES.NOERROR) {
    // Without any record data the documentation addresses answer, so casual tests need no setup.
    const isDefault = b.a === undefined && b.aaaa === undefined && b.txt === undefined && b.manyA === undefined && b.soa === undefined;
    const a = b.manyA !== undefined ? manyAddresses(b.manyA) : (b.a ?? (isDefault ? [DEFAULT_A] : []));
    const aaaa = b.aaaa ?? (isDefault ? [DEFAULT_AAAA] : []);
    if (question.type === T.A) for (const address of a) response.answers.push(rr({ name: owner, type: T.A, ttl, address }));
    if (question.type === T.AAAA) for (const address of aaaa) response.answers.push(rr({ name: owner, type: T.AAAA, ttl, address }));
    if (question.type === T.TXT) for (const text of b.txt ?? []) response.answers.push(rr({ name: owner, type: T.TXT, ttl, data: [text] }));
  }
  const hasData = response.answers.some((r) => r.type === question.type);
  if (b.soa !== undefined && (rcode === RCODES.NXDOMAIN || !hasData)) {
    const zone = b.soa.zone ?? parentOf(owner);
    response.authorities.push(
      rr({
        name: zone,
        type: T.SOA,
        ttl: b.soa.ttl ?? 60,
        primary: `ns1.${zone}`,
        admin: `hostmaster.${zone}`,
        serial: 2024010101,
        refresh: 3600,
        retry: 600,
        expiration: 86400,
        minimum: b.soa.minimum ?? 60,
      }),
    );
  }
  return response.toBuffer();
}

function baseResponse(request: Packet): Packet {
  const response = Packet.createResponseFromRequest(request);
  response.header.ra = 1;
  const opt = request.additionals.find((r) => r.type === T.EDNS);
  if (opt !== undefined) response.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: 1232, doFlag: opt.doFlag === true }) as Resource);
  return response;
}

function truncated(request: Packet, edns: boolean): Buffer {
  const response = baseResponse(request);
  if (!edns) response.additionals = [];
  response.header.tc = 1;
  return response.toBuffer();
}

function forge(request: Packet, kind: Forgery): Buffer {
  if (kind === 'garbage') {
    const bytes = Buffer.from([0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1, 0xde, 0xad]);
    bytes.writeUInt16BE(request.header.id, 0);
    return bytes;
  }
  if (kind === 'compressed-question') return compressedQuestion(request);
  const spoof = baseResponse(request);
  const question = request.questions[0];
  if (question !== undefined) {
    const name = kind === 'wrong-question' ? `spoofed.${question.name}` : question.name;
    spoof.questions = [new Packet.Question(name, question.type, question.class)];
    const type = question.type === T.AAAA ? T.AAAA : T.A;
    spoof.answers.push(rr({ name, type, ttl: 86400, address: type === T.AAAA ? SPOOFED_AAAA : SPOOFED_A }));
  }
  if (kind === 'wrong-id') spoof.header.id = (request.header.id + 1 + Math.floor(Math.random() * 0xfffe)) & 0xffff;
  return spoof.toBuffer();
}

/** Header, question `first-label` + pointer, then one A record owned by the parent name the pointer targets. */
function compressedQuestion(request: Packet): Buffer {
  const question = request.questions[0];
  const labels = (question?.name ?? 'example').split('.');
  const first = Buffer.from(labels[0]);
  const parent = Buffer.concat([...labels.slice(1).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  const header = Buffer.from([0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
  header.writeUInt16BE(request.header.id, 0);
  const qname = Buffer.concat([Buffer.from([first.length]), first, Buffer.from([0xc0, 0])]);
  const parentAt = 12 + qname.length + 4;
  qname.writeUInt16BE(0xc000 | parentAt, qname.length - 2);
  const qtail = Buffer.alloc(4);
  qtail.writeUInt16BE(question?.type ?? T.A, 0);
  qtail.writeUInt16BE(question?.class ?? Packet.CLASS.IN, 2);
  const rrTail = Buffer.from([0, 1, 0, 1, 0, 1, 0x51, 0x80, 0, 4, ...SPOOFED_A.split('.').map(Number)]);
  return Buffer.concat([header, qname, qtail, parent, rrTail]);
}

function rr(fields: Partial<Resource>): Resource {
  return Object.assign(new Packet.Resource(), { class: Packet.CLASS.IN }, fields);
}

function manyAddresses(count: number): string[] {
  const n = Math.min(count, MAX_MANY_A);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`198.${18 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`);
  return out;
}

function parentOf(name: string): string {
  const dot = name.indexOf('.');
  return dot === -1 || dot === name.length - 1 ? name : name.slice(dot + 1);
}

function flag(header: Packet['header'], bit: 'ad' | 'cd'): boolean {
  return (header as unknown as Record<string, number>)[bit] === 1;
}

function lengthPrefixed(msg: Buffer): Buffer {
  const out = Buffer.alloc(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

// --- DoH request bodies ----------------------------------------------------------------------

async function readDohQuery(req: IncomingMessage | Http2ServerRequest): Promise<Buffer | null> {
  if (req.method === 'GET') {
    const dns = new URL(req.url ?? '/', 'http://fake').searchParams.get('dns');
    return dns === null ? null : Buffer.from(dns, 'base64url');
  }
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  return body.length >= 12 ? body : null;
}

function respond(res: ServerResponse | Http2ServerResponse, status: number, type: string, body: Buffer): void {
  if (res.writableEnded || res.destroyed) return;
  (res as ServerResponse).writeHead(status, { 'content-type': type, 'content-length': body.length });
  (res as ServerResponse).end(body);
}

// --- sockets ---------------------------------------------------------------------------------

function bindUdp(socket: UdpSocket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

/** UDP on a random port, then TCP on the same one; a port already taken for TCP means another try. */
async function bindUdpAndTcp(host: string, onConnection: (socket: Socket) => void): Promise<{ udp: UdpSocket; tcp: TcpServer; port: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket(host === '::1' ? 'udp6' : 'udp4');
    await bindUdp(udp, host, 0);
    const port = (udp.address() as { port: number }).port;
    const tcp = createTcpServer(onConnection);
    try {
      await listen(tcp, host, port);
      return { udp, tcp, port };
    } catch {
      await closeUdp(udp);
    }
  }
  throw new Error(`fake upstream: no port free for both UDP and TCP on ${host} after 20 tries`);
}

function listen(server: TcpServer | TlsServer | HttpServer | Http2SecureServer, host: string, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}

function closeServer(server: TcpServer | TlsServer | HttpServer | Http2SecureServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function closeUdp(socket: UdpSocket): Promise<void> {
  return new Promise((resolve) => socket.close(() => resolve()));
}
