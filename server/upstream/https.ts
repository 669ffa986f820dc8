// DNS over HTTPS (RFC 8484): POST application/dns-message through one undici pool per upstream,
// which keeps connections alive and speaks HTTP/2 when the server offers it.
import { rootCertificates } from 'node:tls';
import { Pool } from 'undici';
import type { UpstreamSpec } from './spec.js';
import { counted, newCounters, networkError, UpstreamError, type Upstream, type UpstreamClientOptions } from './types.js';
import { answersQuery, assertQuery, readId, restoreId, withId } from './wire.js';

const MEDIA_TYPE = 'application/dns-message';
const MAX_MESSAGE = 65535;

export class HttpsUpstream implements Upstream {
  readonly name: string;
  readonly counters = newCounters();
  private readonly pool: Pool;
  private readonly path: string;

  constructor(
    readonly spec: UpstreamSpec,
    opts: UpstreamClientOptions = {},
  ) {
    this.name = spec.url;
    const url = new URL(spec.url);
    this.path = spec.path ?? url.pathname + url.search;
    this.pool = new Pool(url.origin, {
      allowH2: true,
      // HTTP/1.1 needs a connection per concurrent request; HTTP/2 multiplexes on the first one.
      connections: 8,
      keepAliveTimeout: 30_000,
      ...(opts.tlsCa !== undefined ? { connect: { ca: [...rootCertificates, opts.tlsCa] } } : {}),
    });
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
    try {
      const res = await this.pool.request({
        path: this.path,
        method: 'POST',
        headers: { 'content-type': MEDIA_TYPE, accept: MEDIA_TYPE },
        body: wire,
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
    }
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
