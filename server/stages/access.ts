// Access: refuse outsiders before any work (a port-forward mistake must never make an open
// resolver), then the per-client rate limit. Refusals carry no EDE so they are never larger than
// the query (no amplification).
//
// The decision lives in ClientGate so that the packet handler can apply the very same check to
// packets that never reach the chain (malformed, other opcodes, EDNS versions we do not speak):
// an outsider must get REFUSED for those too, never a FORMERR/NOTIMP/BADVERS that tells it more.
import { isLoopback, type ClientAcl } from '../acl.js';
import type { Answer, Handler, Query, Refusal, Stage } from '../pipeline/types.js';
import type { RateLimiter } from '../rate-limit.js';
import { RCODE } from '../wire/constants.js';
import { buildRcode } from '../wire/response.js';

export interface AccessOptions {
  acl: ClientAcl;
  limiter: RateLimiter | null;
  limitLoopback: boolean;
  /** Called for every packet refused by the rate limit (they are counted apart from other refusals). */
  onRateLimited?: (protocol: 'udp' | 'tcp') => void;
}

export type { Refusal };

/** Rejection reason under which rate-limit refusals are counted (stats: hushdns_rejected_packets_total). */
export const RATE_LIMITED_REASON = 'client over its rate limit';

export class ClientGate {
  constructor(private readonly opts: AccessOptions) {}

  /** Decides one packet from `address`; takes a rate-limit token when it is admitted by the ACL. */
  check(address: string, protocol: 'udp' | 'tcp'): Refusal | null {
    const { acl, limiter, limitLoopback } = this.opts;
    if (!acl.allows(address)) return 'outside-allow-clients';
    if (limiter && (limitLoopback || !isLoopback(address)) && !limiter.take(address)) {
      this.opts.onRateLimited?.(protocol);
      return 'rate-limited';
    }
    return null;
  }
}

export function refusalText(refusal: Refusal, address: string): string {
  return refusal === 'rate-limited' ? `client ${address} is over its rate limit` : `client ${address} is outside allow-clients`;
}

export function accessStage(gate: ClientGate): Stage {
  return (next: Handler) => (query: Query) => {
    const refusal = gate.check(query.client.address, query.protocol);
    return refusal === null ? next(query) : refused(query, refusal);
  };
}

function refused(query: Query, refusal: Refusal): Answer {
  return { wire: buildRcode(query.msg, query.q, RCODE.REFUSED), outcome: 'refused', reason: refusalText(refusal, query.client.address), rcode: RCODE.REFUSED, refusal };
}
