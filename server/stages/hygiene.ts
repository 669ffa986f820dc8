// Protocol hygiene for well-formed queries (malformed ones never reach the chain: the packet
// handler answers FORMERR/NOTIMP/BADVERS itself, to clients the access gate admits): ANY gets
// RFC 8482's minimal answer, zone transfers and non-IN classes are refused.
import type { Handler, Query, Stage } from '../pipeline/types.js';
import { CLASS, RCODE, TYPE } from '../wire/constants.js';
import { buildAnyRefusal, buildRcode } from '../wire/response.js';

const ANY_TTL = 3600;

export function hygieneStage(): Stage {
  return (next: Handler) => (query: Query) => {
    const { qtype, qclass } = query.q;
    if (qtype === TYPE.AXFR || qtype === TYPE.IXFR || qclass !== CLASS.IN) {
      const reason = qclass !== CLASS.IN ? `class ${qclass} is not served` : 'zone transfers are not served';
      return { wire: buildRcode(query.msg, query.q, RCODE.REFUSED), outcome: 'refused', reason, rcode: RCODE.REFUSED };
    }
    if (qtype === TYPE.ANY) {
      return { wire: buildAnyRefusal(query.msg, query.q, ANY_TTL), outcome: 'local', reason: 'ANY: RFC 8482 minimal answer', rcode: RCODE.NOERROR };
    }
    return next(query);
  };
}
