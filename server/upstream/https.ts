// DNS over HTTPS (RFC 8484): POST application/dns-message through one undici pool per upstream,
// which keeps connections alive and speaks HTTP/2 when the server offers it.
//
// Two undici 7 quirks are handled here so HTTP/2 really multiplexes:
// - a client takes more than one request at a time only when `pipelining` > 1, which must stay 1
//   for HTTP/1.1; so `pipelining` is raised per connection once ALPN has chosen h2;
// - until a connection is up, undici cannot know the protocol, so a burst of queries would each
//   open a TLS connection of their own; queries arriving while the first connection is being
//   opened wait for its handshake (not its answer), then share it.
import { rootCertificates, type TLSSocket } from 'node:tls';
import { buildConnector, Pool, type Client } from 'undici';
import type { UpstreamSpec } from './spec.js';
import { counted, newCounters, networkError, UpstreamError, type Upstream, type UpstreamClientOptions, type UpstreamCounters } from './types.js';
import { answersQuery, assertQuery, readId, restoreId, withId } from './wire.js';

interface Gate {
  promise: Promise<void>;
  release(): void;
}

const MEDIA_TYPE = 'application/dns-message';
const MAX_MESSAGE = 65535;
/** Concurrent queries per HTTP/2 connection (servers commonly allow 100 streams or more). */
const H2_STREAMS = 64;

export class HttpsUpstream implements Upstream {
  readonly name: string;
  private readonly pool: Pool;
  private readonly path: string;
  private liveConnections = 0;
  /** Settles when the connection being opened is up or has failed; null when none is opening. */
  private opening: Gate | null = null;
  /** ALPN result of the latest connection; the same server answers the same way every time. */
  private negotiatedH2 = false;

  constructor(
    readonly spec: UpstreamSpec,
    opts: UpstreamClientOptions = {},
    readonly counters: UpstreamCounters = newCounters(),
  ) {
    this.name = spec.url;
    const url = new URL(spec.url);
    this.path = spec.path ?? url.pathname + url.search;
    const connect = buildConnector({ allowH2: true, ...(opts.tlsCa !== undefined ? { ca: [...rootCertificates, opts.tlsCa] } : {}) });
    this.pool = new Pool(url.origin, {
      allowH2: true,
      // HTTP/1.1 needs a connection per concurrent request; HTTP/2 multiplexes on the first one.
      connections: 8,
      keepAliveTimeout: 30_000,
      connect: (options, callback) =>
        connect(options, (...args) => {
          if (args[0] === null) this.negotiatedH2 = (args[1] as TLSSocket).alpnProtocol === 'h2';
          callback(...args);
        }),
    });
    this.pool.on('connect', (_origin, targets) => {
      if (this.negotiatedH2) (targets[targets.length - 1] as Client).pipelining = H2_STREAMS;
      this.liveConnections++;
      this.releaseWaiters();
    });
    this.pool.on('disconnect', () => {
      this.liveConnections = Math.max(0, this.liveConnections - 1);
    });
    this.pool.on('connectionError', () => this.releaseWaiters());
  }

  exchange(query: Buffer, timeoutMs: number): Promise<Buffer> {
    assertQuery(query);
    return counted(this.counters, async () => restoreId(await this.post(withId(query, 0), timeoutMs), readId(query)));
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }

  private async post(wire: Buffer, timeoutMs: number): Promise<Buffer> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    let gate: Gate | null = null;
    try {
      gate = await this.awaitOpening(abort.signal);
      const res = await this.pool.request({
        path: this.path,
        method: 'POST',
        headers: { 'content-type': MEDIA_TYPE, accept: MEDIA_TYPE },
        body: wire,
        // A DNS query is safe to repeat; without this undici sends one POST at a time per connection,
        // which defeats HTTP/2 multiplexing.
        idempotent: true,
        signal: abort.signal,
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw new UpstreamError('bad-response', `HTTP status ${res.statusCode}`, this.name);
      }
      const type = headerValue(res.headers['content-type']);
      if (!isDnsMessage(type)) {
        await res.body.dump();
        throw new UpstreamError('bad-response', `content-type is ${JSON.stringify(type ?? '(none)')}, expected ${MEDIA_TYPE}`, this.name);
      }
      const reply = await readCapped(res.body, MAX_MESSAGE);
      if (reply === null) throw new UpstreamError('bad-response', `body longer than ${MAX_MESSAGE} bytes`, this.name);
      if (!answersQuery(wire, reply)) {
        this.counters.mismatched++;
        throw new UpstreamError('bad-response', `reply (${reply.length} bytes) does not answer the query`, this.name);
      }
      return reply;
    } catch (err) {
      if (abort.signal.aborted) throw new UpstreamError('timeout', `no answer over HTTPS within ${timeoutMs} ms`, this.name);
      throw networkError(this.name, err);
    } finally {
      clearTimeout(timer);
      // However this query ended, the queries waiting on its connection may go ahead now.
      if (gate !== null && this.opening === gate) this.releaseWaiters();
    }
  }

  /** Returns the gate when this query is the one opening the connection. */
  private async awaitOpening(signal: AbortSignal): Promise<Gate | null> {
    if (this.liveConnections > 0) return null;
    const opening = this.opening;
    if (opening === null) {
      let release = (): void => {};
      const promise = new Promise<void>((resolve) => (release = resolve));
      this.opening = { promise, release };
      return this.opening;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      void opening.promise.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
    return null;
  }

  private releaseWaiters(): void {
    const opening = this.opening;
    this.opening = null;
    opening?.release();
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function isDnsMessage(type: string | undefined): boolean {
  if (type === undefined) return false;
  const semi = type.indexOf(';');
  return (semi === -1 ? type : type.slice(0, semi)).trim().toLowerCase() === MEDIA_TYPE;
}

async function readCapped(body: AsyncIterable<Buffer>, cap: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > cap) return null;
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}
