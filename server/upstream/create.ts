// One transport per parsed upstream spec. DoH's client (undici, about 20 MB resident) loads only
// when a DoH upstream is first asked, so a server with plain, TCP or TLS upstreams never carries it.
import type { UpstreamSpec } from './spec.js';
import { TcpUpstream } from './tcp.js';
import { TlsUpstream } from './tls.js';
import { newCounters, type Upstream, type UpstreamClientOptions } from './types.js';
import { UdpUpstream } from './udp.js';

/** The transport for a parsed spec. */
export function createUpstream(spec: UpstreamSpec, clientOpts: UpstreamClientOptions = {}): Upstream {
  switch (spec.kind) {
    case 'udp':
      return new UdpUpstream(spec);
    case 'tcp':
      return new TcpUpstream(spec);
    case 'tls':
      return new TlsUpstream(spec, clientOpts);
    case 'https':
      return new LazyHttpsUpstream(spec, clientOpts);
  }
}

class LazyHttpsUpstream implements Upstream {
  readonly name: string;
  readonly counters = newCounters();
  private loading: Promise<Upstream> | null = null;
  /** Once loaded, queries go straight to it (no promise step per query). */
  private inner: Upstream | null = null;

  constructor(
    readonly spec: UpstreamSpec,
    private readonly opts: UpstreamClientOptions,
  ) {
    this.name = spec.url;
  }

  exchange(query: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.inner) return this.inner.exchange(query, timeoutMs);
    this.loading ??= import('./https.js').then((m) => (this.inner = new m.HttpsUpstream(this.spec, this.opts, this.counters)));
    return this.loading.then((u) => u.exchange(query, timeoutMs));
  }

  async close(): Promise<void> {
    await (await this.loading)?.close();
  }
}
