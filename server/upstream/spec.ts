// Upstream addresses as the user writes them (flags, env, config file) turned into one typed spec.
// Plain DNS and DoT take IP addresses only: a sinkhole that needs DNS to find its own upstream
// fails exactly when it is needed most, and often loops back to itself.
import { isIP } from 'node:net';

export type UpstreamKind = 'udp' | 'tcp' | 'tls' | 'https';

export interface UpstreamSpec {
  /** Canonical form, also the upstream's name in logs, health and metrics (e.g. `udp://9.9.9.9:53`). */
  url: string;
  kind: UpstreamKind;
  /** IP address (udp, tcp, tls) or host name / IP (https), without IPv6 brackets. */
  host: string;
  port: number;
  /** Name the TLS certificate must carry (tls with NAME@IP, https with a host name). */
  servername?: string;
  /** DoH request path, e.g. `/dns-query` (https only). */
  path?: string;
}

export class UpstreamConfigError extends Error {
  readonly code = 'bad-upstream' as const;
  constructor(
    readonly value: string,
    problem: string,
  ) {
    super(`bad upstream ${JSON.stringify(value)}: ${problem}. ${EXAMPLES}`);
    this.name = 'UpstreamConfigError';
  }
}

const EXAMPLES =
  'Valid examples: 9.9.9.9, udp://9.9.9.9:53, udp://[2620:fe::fe]:53, tcp://9.9.9.9:53, ' +
  'tls://dns.quad9.net@9.9.9.9:853, tls://1.1.1.1, https://dns.quad9.net/dns-query, https://1.1.1.1/dns-query';

const DEFAULT_PORT: Record<UpstreamKind, number> = { udp: 53, tcp: 53, tls: 853, https: 443 };

export function parseUpstream(url: string): UpstreamSpec {
  const value = url.trim();
  if (value === '') throw new UpstreamConfigError(url, 'it is empty');
  const sep = value.indexOf('://');
  if (sep === -1) return plainSpec(url, 'udp', value);
  const scheme = value.slice(0, sep).toLowerCase();
  const rest = value.slice(sep + 3);
  switch (scheme) {
    case 'udp':
    case 'tcp':
    case 'tls':
      return plainSpec(url, scheme, rest);
    case 'https':
    case 'http':
      return dohSpec(url, value);
    default:
      throw new UpstreamConfigError(url, `unknown scheme "${scheme}://" (use udp, tcp, tls or https)`);
  }
}

/** udp, tcp and tls: `[NAME@]IP[:PORT]`, optionally followed by a lone `/`. */
function plainSpec(original: string, kind: 'udp' | 'tcp' | 'tls', authorityAndPath: string): UpstreamSpec {
  let authority = authorityAndPath;
  const slash = authority.indexOf('/');
  if (slash !== -1) {
    if (authority.slice(slash) !== '/') throw new UpstreamConfigError(original, `${kind} upstreams take no path`);
    authority = authority.slice(0, slash);
  }
  let servername: string | undefined;
  const at = authority.lastIndexOf('@');
  if (at !== -1) {
    if (kind !== 'tls') throw new UpstreamConfigError(original, `NAME@ADDRESS is only meaningful for tls:// (the name the certificate must carry)`);
    servername = authority.slice(0, at).toLowerCase();
    authority = authority.slice(at + 1);
    if (isIP(servername) !== 0) throw new UpstreamConfigError(original, `the part before "@" is the certificate's host name, not an address (for an IP certificate write tls://${servername})`);
    if (!isHostName(servername)) throw new UpstreamConfigError(original, `"${servername}" is not a valid TLS server name`);
  }
  const { host, port } = splitHostPort(original, authority, DEFAULT_PORT[kind]);
  if (isIP(host) === 0) {
    const hint = kind === 'tls' ? ` (write the certificate name and the address as tls://${host}@IP:853)` : '';
    throw new UpstreamConfigError(original, `"${host}" is not an IP address${hint}`);
  }
  const canonicalHost = canonicalIp(host);
  return {
    url: `${kind}://${servername !== undefined ? `${servername}@` : ''}${bracket(canonicalHost)}:${port}`,
    kind,
    host: canonicalHost,
    port,
    ...(servername !== undefined ? { servername } : {}),
  };
}

function splitHostPort(original: string, authority: string, defaultPort: number): { host: string; port: number } {
  if (authority === '') throw new UpstreamConfigError(original, 'the address is missing');
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close === -1) throw new UpstreamConfigError(original, 'an IPv6 address opened with "[" has no closing "]"');
    const host = authority.slice(1, close);
    const after = authority.slice(close + 1);
    if (after === '') return { host, port: defaultPort };
    if (!after.startsWith(':')) throw new UpstreamConfigError(original, `unexpected "${after}" after the IPv6 address`);
    return { host, port: parsePort(original, after.slice(1)) };
  }
  const firstColon = authority.indexOf(':');
  if (firstColon === -1) return { host: authority, port: defaultPort };
  // More than one colon without brackets can only be a bare IPv6 address (no port).
  if (authority.indexOf(':', firstColon + 1) !== -1) {
    if (isIP(authority) === 6) return { host: authority, port: defaultPort };
    throw new UpstreamConfigError(original, 'write an IPv6 address with a port in brackets, e.g. [2620:fe::fe]:53');
  }
  return { host: authority.slice(0, firstColon), port: parsePort(original, authority.slice(firstColon + 1)) };
}

function parsePort(original: string, text: string): number {
  let port = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57 || i >= 5) throw new UpstreamConfigError(original, `port "${text}" is not a number from 1 to 65535`);
    port = port * 10 + (c - 48);
  }
  if (text.length === 0 || port < 1 || port > 65535) throw new UpstreamConfigError(original, `port "${text}" is not a number from 1 to 65535`);
  return port;
}

/** https://HOST[:PORT][/PATH]; http:// only towards loopback, for tests. */
function dohSpec(original: string, value: string): UpstreamSpec {
  // RFC 8484 publishes URI templates such as https://dns.example/dns-query{?dns}; accept them as copied.
  const cleaned = value.endsWith('{?dns}') ? value.slice(0, -6) : value;
  let parsed: URL;
  try {
    parsed = new URL(cleaned);
  } catch {
    throw new UpstreamConfigError(original, 'it is not a valid URL');
  }
  if (parsed.username !== '' || parsed.password !== '') throw new UpstreamConfigError(original, 'DoH URLs take no user name or password');
  if (parsed.hash !== '') throw new UpstreamConfigError(original, 'DoH URLs take no #fragment');
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  if (host === '') throw new UpstreamConfigError(original, 'the host is missing');
  const secure = parsed.protocol === 'https:';
  if (!secure && host !== '127.0.0.1' && host !== '::1') {
    throw new UpstreamConfigError(original, 'plain http:// would send every query in clear text; use https:// (http:// is accepted only for 127.0.0.1 and ::1)');
  }
  if (isIP(host) === 0 && !isHostName(host)) throw new UpstreamConfigError(original, `"${host}" is not a valid host name`);
  const port = parsed.port === '' ? (secure ? 443 : 80) : Number(parsed.port);
  const path = (parsed.pathname === '/' ? '/dns-query' : parsed.pathname) + parsed.search;
  return {
    url: `${parsed.protocol}//${parsed.host}${path}`,
    kind: 'https',
    host,
    port,
    ...(secure && isIP(host) === 0 ? { servername: host } : {}),
    path,
  };
}

/** The text form Node reports for a peer address (`::1`, never `0:0:0:0:0:0:0:1`). */
export function canonicalIp(host: string): string {
  if (isIP(host) !== 6) return host;
  return new URL(`http://[${host}]/`).hostname.slice(1, -1);
}

function bracket(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function isHostName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  let labelLength = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 46 /* . */) {
      if (labelLength === 0) return false;
      labelLength = 0;
      continue;
    }
    const ok = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 95;
    if (!ok || ++labelLength > 63) return false;
  }
  return labelLength > 0;
}
