// DNS over TLS (RFC 7858): one long-lived connection per upstream carrying many queries at once
// (pipelining, RFC 7766 §6.2.1.1), answers matched by ID in whatever order they come back.
// The connection is opened on demand, closed after a quiet spell, and reopened when the server
// closes it; a query caught by a server closing a reused connection is sent once more.
import { rootCertificates, connect, type TLSSocket } from 'node:tls';
import { FrameDecoder, frame } from './framing.js';
import type { UpstreamSpec } from './spec.js';
import { counted, newCounters, networkError, UpstreamError, type Upstream, type UpstreamClientOptions } from './types.js';
import { answersQuery, assertQuery, randomId, readId, restoreId, withId } from './wire.js';

const DEFAULT_IDLE_MS = 10_000;
/** Far below the 65,536 IDs, so finding a free one stays quick. */
const MAX_IN_FLIGHT = 4096;

interface InFlight {
  wire: Buffer;
  resolve(reply: Buffer): void;
  reject(err: UpstreamError): void;
  timer: NodeJS.Timeout;
  /** Sent on a connection that had already answered before: the server may have closed it as idle. */
  reused: boolean;
  retried: boolean;
}

export class TlsUpstream implements Upstream {
  readonly name: string;
  readonly counters = newCounters();
  private connection: DotConnection | null = null;
  private readonly ca: (string | Buffer)[] | undefined;
  private readonly idleMs: number;
  private closed = false;
  /** Connections opened so far (lets tests see reuse and reconnects). */
  connectionsOpened = 0;

  constructor(
    readonly spec: UpstreamSpec,
    opts: UpstreamClientOptions = {},
  ) {
    this.name = spec.url;
    this.ca = opts.tlsCa === undefined ? undefined : [...rootCertificates, opts.tlsCa];
    this.idleMs = opts.tlsIdleMs ?? DEFAULT_IDLE_MS;
  }

  exchange(query: Buffer, timeoutMs: number): Promise<Buffer> {
    assertQuery(query);
    return counted(this.counters, async () => {
      if (this.closed) throw new UpstreamError('network', 'upstream is closed', this.name);
      const callerId = readId(query);
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const entry: InFlight = {
          wire: query,
          resolve,
          reject,
          reused: false,
          retried: false,
          timer: setTimeout(() => this.expire(entry, timeoutMs), timeoutMs),
        };
        this.send(entry);
      });
      return restoreId(reply, callerId);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    this.connection = null;
    if (connection !== null) await connection.shut(new UpstreamError('network', 'upstream is closed', this.name));
  }

  private send(entry: InFlight): void {
    let connection = this.connection;
    if (connection === null || !connection.usable) {
      connection = this.connection = new DotConnection(this.spec, this.name, this.ca, this.idleMs, this.counters, (c, failed) => this.onConnectionClosed(c, failed));
      this.connectionsOpened++;
    }
    if (connection.inFlight.size >= MAX_IN_FLIGHT) {
      clearTimeout(entry.timer);
      entry.reject(new UpstreamError('network', `more than ${MAX_IN_FLIGHT} queries in flight`, this.name));
      return;
    }
    connection.write(entry);
  }

  private expire(entry: InFlight, timeoutMs: number): void {
    this.connection?.forget(entry);
    entry.reject(new UpstreamError('timeout', `no answer over TLS within ${timeoutMs} ms`, this.name));
  }

  private onConnectionClosed(connection: DotConnection, orphans: InFlight[]): void {
    if (this.connection === connection) this.connection = null;
    for (const entry of orphans) {
      if (entry.reused && !entry.retried && !this.closed) {
        entry.retried = true;
        this.send(entry);
      } else {
        clearTimeout(entry.timer);
        entry.reject(connection.failure ?? new UpstreamError('network', 'TLS connection closed before the answer', this.name));
      }
    }
  }
}

class DotConnection {
  readonly inFlight = new Map<number, InFlight>();
  usable = true;
  failure: UpstreamError | null = null;
  private readonly socket: TLSSocket;
  private readonly decoder = new FrameDecoder();
  private answered = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    spec: UpstreamSpec,
    private readonly name: string,
    ca: (string | Buffer)[] | undefined,
    private readonly idleMs: number,
    private readonly counters: { mismatched: number },
    private readonly onClosed: (connection: DotConnection, orphans: InFlight[]) => void,
  ) {
    // Without a servername Node checks the certificate against the IP address itself (tls://1.1.1.1).
    this.socket = connect({
      host: spec.host,
      port: spec.port,
      ...(spec.servername !== undefined ? { servername: spec.servername } : {}),
      ...(ca !== undefined ? { ca } : {}),
    });
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.decoder.push(chunk, (msg) => this.onMessage(msg)));
    this.socket.on('error', (err) => {
      this.failure ??= networkError(this.name, err);
    });
    this.socket.on('close', () => this.onClose());
  }

  write(entry: InFlight): void {
    this.clearIdle();
    let id = randomId();
    while (this.inFlight.has(id)) id = randomId();
    entry.wire = withId(entry.wire, id);
    entry.reused = this.answered > 0;
    this.inFlight.set(id, entry);
    this.socket.write(frame(entry.wire));
  }

  forget(entry: InFlight): void {
    const id = readId(entry.wire);
    if (this.inFlight.get(id) === entry) this.inFlight.delete(id);
    this.armIdle();
  }

  shut(reason: UpstreamError): Promise<void> {
    this.failure ??= reason;
    this.usable = false;
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.destroy();
    });
  }

  private onMessage(msg: Buffer): void {
    const entry = msg.length >= 2 ? this.inFlight.get(readId(msg)) : undefined;
    if (entry === undefined || !answersQuery(entry.wire, msg)) {
      // Late answers to queries that already timed out land here too; they are harmless but counted.
      this.counters.mismatched++;
      return;
    }
    this.inFlight.delete(readId(msg));
    this.answered++;
    clearTimeout(entry.timer);
    entry.resolve(msg);
    this.armIdle();
  }

  private onClose(): void {
    this.usable = false;
    this.clearIdle();
    const orphans = [...this.inFlight.values()];
    this.inFlight.clear();
    this.onClosed(this, orphans);
  }

  private armIdle(): void {
    if (this.inFlight.size > 0 || this.idleTimer !== null || !this.usable) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.inFlight.size > 0) return;
      this.usable = false;
      this.socket.end();
      // A server that never answers our close_notify must not keep the socket around.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    }, this.idleMs);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
  }
}
