// Who may do what over HTTP. Changes need the API token as a bearer header, compared in constant
// time. Browsers are kept from being turned against the LAN: a custom Authorization header cannot
// be sent cross-origin without a CORS preflight (which we never grant), and the Host check refuses
// pages that reach us through DNS rebinding (attacker.example resolving to this box), which would
// otherwise read the query log from the victim's browser.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';

export const API_TOKEN_FILE = 'api-token';

/**
 * The token changes need, from the `api-token` setting: `auto` reads DATA_DIR/api-token, creating
 * it (random, mode 0600) on first start; `off` turns changes off (null); anything else is the token.
 */
export function resolveApiToken(setting: string, dataDir: string, log: Logger): string | null {
  if (setting === 'off') return null;
  if (setting !== 'auto') return setting;
  const file = join(dataDir, API_TOKEN_FILE);
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length >= 16) return token;
    log.warn('the API token file holds fewer than 16 characters; writing a new token', { path: file });
  }
  const token = randomBytes(24).toString('base64url');
  try {
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  } catch (err) {
    // A read-only or full data folder must not keep DNS from starting. A token nobody can read
    // would be no use, so changes stay off until the folder is writable or a token is configured.
    log.error('cannot save an API token in the data folder: changes through the HTTP API are off for this run; make the folder writable or set HUSHDNS_API_TOKEN', { path: file, err });
    return null;
  }
  log.info('created an API token for changes through the HTTP API and the dashboard', { path: file });
  return token;
}

/** Constant-time comparison of an Authorization header with the token (hashing first evens out the lengths). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (!header) return false;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) return false;
  const a = createHash('sha256').update(m[1]).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** LAN-only suffixes a dashboard is normally reached by. */
const LAN_SUFFIXES = ['.lan', '.local', '.home.arpa', '.internal', '.localdomain', '.home', '.localhost'];

export class HostPolicy {
  private readonly names: Set<string>;
  private readonly suffixes: string[];

  /** `names`: extra host names (http-hosts, local records); `localDomain`: the LAN's domain. */
  constructor(names: readonly string[], localDomain: string) {
    this.names = new Set(names.map((n) => n.toLowerCase().replace(/\.$/, '')));
    this.suffixes = localDomain ? [...LAN_SUFFIXES, `.${localDomain.toLowerCase().replace(/^\.|\.$/g, '')}`] : LAN_SUFFIXES;
  }

  /** True for an IP literal, a single-label or LAN name, or a configured one; also when no Host was sent. */
  allows(hostHeader: string | undefined): boolean {
    if (!hostHeader) return true;
    let host = hostHeader.trim().toLowerCase();
    if (host.startsWith('[')) {
      const end = host.indexOf(']');
      return end > 0 && isIPv6(host.slice(1, end));
    }
    const colon = host.lastIndexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (isIPv4(host) || host === 'localhost' || !host.includes('.') || this.names.has(host)) return true;
    return this.suffixes.some((s) => host.endsWith(s));
  }
}
