// Names whose answers signal something to clients rather than point at a host. The server answers
// them itself; the compiler never writes them as list rules, because a list that sinkholes them to
// 0.0.0.0 sends the wrong signal (a non-NXDOMAIN canary tells Firefox it may switch to its own DoH).
export const SPECIAL_NAMES = {
  /** Firefox's DoH canary: NXDOMAIN keeps Firefox on the network's resolver. */
  dohCanary: 'use-application-dns.net',
  /** iCloud Private Relay: NXDOMAIN makes Apple devices fall back to this resolver. */
  privateRelay: ['mask.icloud.com', 'mask-h2.icloud.com'],
  /** RFC 9462 Discovery of Designated Resolvers: NODATA says we offer no encrypted endpoint. */
  ddr: 'resolver.arpa',
} as const;

const ALL = new Set<string>([SPECIAL_NAMES.dohCanary, ...SPECIAL_NAMES.privateRelay, SPECIAL_NAMES.ddr]);

/** True for a special name or any name below one (lists sometimes carry `*.use-application-dns.net`). */
export function isSpecialName(name: string): boolean {
  if (ALL.has(name)) return true;
  for (const special of ALL) {
    if (name.length > special.length && name.endsWith(special) && name.charCodeAt(name.length - special.length - 1) === 0x2e) return true;
  }
  return false;
}
