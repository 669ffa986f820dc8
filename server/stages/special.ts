// Special names: signals to clients (DoH canary, Private Relay, DDR) and names that belong to the
// LAN (localhost, private reverse zones, single labels, .local, the LAN's domain). LAN names never
// reach a public upstream: the router answers them when configured, NXDOMAIN otherwise.
import { createRequire } from 'node:module';
import { SPECIAL_NAMES } from '../../common/special-names.js';
import type { Answer, Handler, Query, Stage } from '../pipeline/types.js';
import { RCODE, TYPE } from '../wire/constants.js';
import { buildAddresses, buildNegative } from '../wire/response.js';
import { ownSoa } from './soa.js';

export interface SpecialOptions {
  blockPrivateRelay: boolean;
  /** The LAN's domain (`lan`, `fritz.box`); '' when not configured. */
  localDomain: string;
  /** Forwards LAN names to the router; null sends them NXDOMAIN. */
  router: Handler | null;
}

/** RFC 6761 / 6762 Appendix G / RFC 8375: names no public resolver should be asked. */
const PRIVATE_TLDS = new Set(['local', 'localhost', 'localdomain', 'internal', 'intranet', 'private', 'corp', 'home', 'lan', 'home.arpa', 'test', 'invalid']);
const LOOPBACK_V4 = Buffer.from([127, 0, 0, 1]);
const LOOPBACK_V6 = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const TTL = 300;
// Built once: this stage runs for every query.
const BELOW_CANARY = `.${SPECIAL_NAMES.dohCanary}`;
const BELOW_DDR = `.${SPECIAL_NAMES.ddr}`;
const PRIVATE_RELAY = new Set<string>(SPECIAL_NAMES.privateRelay);

export function specialStage(opts: SpecialOptions): Stage {
  const localDomain = opts.localDomain.toLowerCase().replace(/^\.|\.$/g, '');
  const negative = (query: Query, rcode: 0 | 3, reason: string): Answer => ({
    wire: buildNegative(query.msg, query.q, rcode, ownSoa(query.q.name, TTL)),
    outcome: 'special',
    reason,
    rcode,
  });

  return (next: Handler) => (query: Query) => {
    const name = query.q.name;
    if (name === SPECIAL_NAMES.dohCanary || name.endsWith(BELOW_CANARY)) {
      return negative(query, RCODE.NXDOMAIN, 'DoH canary: keeps browsers on this resolver');
    }
    if (opts.blockPrivateRelay && PRIVATE_RELAY.has(name)) {
      return negative(query, RCODE.NXDOMAIN, 'iCloud Private Relay: Apple devices fall back to this resolver');
    }
    if (name === SPECIAL_NAMES.ddr || name.endsWith(BELOW_DDR)) {
      return negative(query, RCODE.NOERROR, 'resolver.arpa: no designated encrypted resolver');
    }
    if (name === 'localhost' || name.endsWith('.localhost')) {
      const addr = query.q.qtype === TYPE.A ? LOOPBACK_V4 : query.q.qtype === TYPE.AAAA ? LOOPBACK_V6 : null;
      if (addr) return { wire: buildAddresses(query.msg, query.q, TTL, [addr]), outcome: 'special', reason: 'localhost (RFC 6761)', rcode: RCODE.NOERROR };
      return negative(query, RCODE.NOERROR, 'localhost (RFC 6761)');
    }
    const lan = lanReason(name, localDomain);
    if (lan) {
      if (opts.router && lan !== 'mdns') return opts.router(query);
      return negative(query, RCODE.NXDOMAIN, `${lan} name: never sent to a public upstream`);
    }
    return next(query);
  };
}

/** Why a name belongs to the LAN, or null. */
export function lanReason(name: string, localDomain: string): string | null {
  if (name === '') return null; // the root (priming queries) goes upstream
  if (localDomain && (name === localDomain || (name.endsWith(localDomain) && name.charCodeAt(name.length - localDomain.length - 1) === 0x2e))) return 'LAN domain';
  if (name.endsWith('.local') || name === 'local') return 'mdns';
  const dot = name.indexOf('.');
  if (dot === -1) return PRIVATE_TLDS.has(name) || !isIcannTld(name) ? 'single-label' : null;
  const tld = name.slice(name.lastIndexOf('.') + 1);
  if (PRIVATE_TLDS.has(tld) || name.endsWith('.home.arpa') || name === 'home.arpa') return 'private-use';
  if (name.endsWith('.in-addr.arpa') && isPrivateV4Reverse(name)) return 'private reverse';
  if (name.endsWith('.ip6.arpa') && isPrivateV6Reverse(name)) return 'private reverse';
  return null;
}

/**
 * Single labels: a top-level domain of the public DNS (`com`, `arpa`, `uk`, `xn--p1ai`) goes
 * upstream for every type, or `com NS`, `arpa NS` and `com DS` break and a validating stub cannot
 * build its chain of trust. Every other single label (`printer`, `wpad`, `nas`) stays on the LAN
 * for every type. dnsmasq's domain-needed keeps only A and AAAA at home, because without a list
 * of TLDs it cannot tell `printer` from `com`; we can, so we need not leak the rest: Windows asks
 * SOA for its own bare host name (dynamic update), browsers ask HTTPS beside A, and the root can
 * only ever answer NXDOMAIN for a label it does not delegate. The price: a TLD delegated after our
 * copy of the Public Suffix List answers NXDOMAIN here until tldts is updated.
 */
function isIcannTld(label: string): boolean {
  // The Public Suffix List costs a few MB resident: loaded on the first single-label query only.
  tldts ??= createRequire(import.meta.url)('tldts') as typeof import('tldts');
  return tldts.parse(label, { extractHostname: false, validateHostname: false, detectIp: false, allowPrivateDomains: false }).isIcann === true;
}

let tldts: typeof import('tldts') | undefined;

function isPrivateV4Reverse(name: string): boolean {
  const octets = name.slice(0, -'.in-addr.arpa'.length).split('.').reverse().map(Number);
  const [a, b] = octets;
  if (octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return false;
  if (a === 10 || a === 127 || a === 0) return true;
  if (b === undefined) return false; // 192.in-addr.arpa covers public space too
  return (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
}

function isPrivateV6Reverse(name: string): boolean {
  const nibbles = name.slice(0, -'.ip6.arpa'.length).split('.').reverse().join('');
  if (!/^[0-9a-f]*$/.test(nibbles)) return false;
  if (nibbles.length === 32 && /^0{31}1$/.test(nibbles)) return true; // ::1
  if (nibbles.length >= 2 && (nibbles.startsWith('fc') || nibbles.startsWith('fd'))) return true; // fc00::/7
  if (nibbles.length >= 3 && /^fe[89ab]/.test(nibbles)) return true; // fe80::/10
  return false;
}
