import { HttpsUpstream } from './https.js';
import type { UpstreamSpec } from './spec.js';
import { TcpUpstream } from './tcp.js';
import { TlsUpstream } from './tls.js';
import type { Upstream, UpstreamClientOptions } from './types.js';
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
      return new HttpsUpstream(spec, clientOpts);
  }
}
