// A minimal UDP DNS client for the harness: ask one A question, read the rcode and the first A
// address. Used to time "start → first correct answer" and to check each system answers each
// workload the way the benchmark assumes (blocked vs forwarded) before measuring it.
import { createSocket, type Socket } from 'node:dgram';

export interface ProbeAnswer {
  rcode: number;
  /** First A record's address, null when the answer has none. */
  address: string | null;
}

export function buildQuery(name: string, id: number, qtype = 1): Buffer {
  const labels = name.split('.').filter((l) => l.length > 0);
  const len = 12 + labels.reduce((s, l) => s + 1 + Buffer.byteLength(l), 0) + 1 + 4;
  const buf = Buffer.alloc(len);
  buf.writeUInt16BE(id, 0);
  buf[2] = 0x01; // RD
  buf.writeUInt16BE(1, 4);
  let o = 12;
  for (const l of labels) {
    buf[o++] = Buffer.byteLength(l);
    o += buf.write(l, o, 'latin1');
  }
  buf[o++] = 0;
  buf.writeUInt16BE(qtype, o);
  buf.writeUInt16BE(1, o + 2);
  return buf;
}

function skipName(msg: Buffer, o: number): number {
  for (let guard = 0; guard < 128 && o < msg.length; guard++) {
    const len = msg[o];
    if (len === 0) return o + 1;
    if ((len & 0xc0) === 0xc0) return o + 2;
    o += 1 + len;
  }
  return -1;
}

export function parseAnswer(msg: Buffer): ProbeAnswer | null {
  if (msg.length < 12) return null;
  const rcode = msg[3] & 0x0f;
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  let o = 12;
  for (let i = 0; i < qd; i++) {
    o = skipName(msg, o);
    if (o < 0) return null;
    o += 4;
  }
  for (let i = 0; i < an && o + 10 <= msg.length; i++) {
    o = skipName(msg, o);
    if (o < 0 || o + 10 > msg.length) break;
    const type = msg.readUInt16BE(o);
    const rdlen = msg.readUInt16BE(o + 8);
    o += 10;
    if (type === 1 && rdlen === 4 && o + 4 <= msg.length) return { rcode, address: `${msg[o]}.${msg[o + 1]}.${msg[o + 2]}.${msg[o + 3]}` };
    o += rdlen;
  }
  return { rcode, address: null };
}

/** A blocked answer as any of the systems gives it: NXDOMAIN, or an A record of 0.0.0.0. */
export function isBlockedAnswer(a: ProbeAnswer): boolean {
  return a.rcode === 3 || (a.rcode === 0 && a.address === '0.0.0.0');
}

export class Prober {
  private readonly socket: Socket;
  private nextId = 1;
  private readonly waiting = new Map<number, (a: ProbeAnswer | null) => void>();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (msg) => {
      if (msg.length < 2) return;
      const id = msg.readUInt16BE(0);
      const resolve = this.waiting.get(id);
      if (!resolve) return;
      this.waiting.delete(id);
      resolve(parseAnswer(msg));
    });
  }

  static async open(): Promise<Prober> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve());
    });
    socket.on('error', () => {});
    return new Prober(socket);
  }

  /** One question; null when nothing came back within `timeoutMs`. */
  ask(port: number, name: string, timeoutMs = 200): Promise<ProbeAnswer | null> {
    const id = this.nextId;
    this.nextId = (this.nextId % 0xffff) + 1;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(id, (a) => {
        clearTimeout(timer);
        resolve(a);
      });
      this.socket.send(buildQuery(name, id), port, '127.0.0.1', (err) => {
        if (err) {
          clearTimeout(timer);
          this.waiting.delete(id);
          resolve(null);
        }
      });
    });
  }

  /**
   * Sends the question every `intervalMs` (without waiting for earlier ones, so a server that binds
   * late is seen within one interval) until `accept` takes an answer. Returns milliseconds since
   * `since` (a performance.now() value), or null after `timeoutMs` or once `gaveUp()` is true.
   */
  waitFor(port: number, name: string, accept: (a: ProbeAnswer) => boolean, opts: { since: number; timeoutMs: number; intervalMs?: number; gaveUp?: () => boolean }): Promise<number | null> {
    const interval = opts.intervalMs ?? 5;
    return new Promise((resolve) => {
      let done = false;
      const finish = (v: number | null) => {
        if (done) return;
        done = true;
        clearInterval(timer);
        resolve(v);
      };
      const tick = () => {
        if (done) return;
        if (performance.now() > opts.since + opts.timeoutMs || opts.gaveUp?.()) return finish(null);
        void this.ask(port, name, 1000).then((a) => {
          if (a && accept(a)) finish(performance.now() - opts.since);
        });
      };
      const timer = setInterval(tick, interval);
      tick();
    });
  }

  close(): void {
    for (const resolve of this.waiting.values()) resolve(null);
    this.waiting.clear();
    this.socket.close();
  }
}
