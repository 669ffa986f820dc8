// Access: refuse outsiders before any work (a port-forward mistake must never make an open
// resolver), then the per-client rate limit. Refusals carry no EDE so they are never larger than
// the query (no amplification).
import { isLoopback, type ClientAcl } from '../acl.js';
import type { Answer, Handler, Query, Stage } from '../pipeline/types.js';
import type { RateLimiter } from '../rate-limit.js';
import { RCODE } from '../wire/constants.js';
import { buildRcode } from '../wire/response.js';

export interface AccessOptions {
  acl: ClientAcl;
  limiter: RateLimiter | null;
  limitLoopback: boolean;
}

export function accessStage(opts: AccessOptions): Stage {
  return (next: Handler) => (query: Query) => {
    const address = query.client.address;
    if (!opts.acl.allows(address)) return refused(query, `client ${address} is outside allow-clients`);
    if (opts.limiter && (opts.limitLoopback || !isLoopback(address)) && !opts.limiter.take(address)) {
      return refused(query, `client ${address} is over its rate limit`);
    }
    return next(query);
  };
}

function refused(query: Query, reason: string): Answer {
  return { wire: buildRcode(query.msg, query.q, RCODE.REFUSED), outcome: 'refused', reason, rcode: RCODE.REFUSED };
}
