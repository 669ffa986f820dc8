// The SOA we put in the authority section of negative answers for names we answer ourselves
// (special names, the user's local records): RFC 2308 §3 wants one so that resolvers cache the
// NXDOMAIN or NODATA, for min(TTL, MINIMUM) seconds.
import type { SoaTemplate } from '../wire/response.js';

export function ownSoa(zone: string, ttl: number): SoaTemplate {
  return { zone, ttl, mname: 'hushdns.local', rname: 'hostmaster.hushdns.local', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: ttl };
}
