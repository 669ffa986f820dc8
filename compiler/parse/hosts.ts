// hosts files: `IP name [name…] [# comment]`. Every name is an exact block whatever the address
// (0.0.0.0, 127.0.0.1, ::, ::1, or a real address some lists redirect to). The lines an OS hosts
// file needs for itself (localhost, broadcast, IPv6 link-local and multicast) are skipped, not
// counted as bad, since nearly every big list ships them in its header.
import { isIPv4, isIPv6 } from 'node:net';
import type { LineParser, ParsedLine } from '../types.js';
import { SKIP, invalid, rejectUnreadable, skipSpace, skipToken } from './common.js';

/** Names an OS maps for itself; never a block, whatever the address on their line. */
const HOUSEKEEPING_NAMES = new Set([
  'localhost',
  'localhost.localdomain',
  'local',
  'broadcasthost',
  'ip6-localhost',
  'ip6-loopback',
  'ip6-localnet',
  'ip6-mcastprefix',
  'ip6-allnodes',
  'ip6-allrouters',
  'ip6-allhosts',
  '0.0.0.0',
]);

type AddressKind = 'address' | 'housekeeping';

/**
 * Whether the first field is an address, and whether the whole line is OS housekeeping:
 * broadcast (255.255.255.255), IPv6 link-local (fe80::/10, often with a zone as in `fe80::1%lo0`),
 * multicast (ff00::/8) and `fe00::0` (ip6-localnet).
 */
function addressKind(token: string): AddressKind | null {
  // The sinks almost every line uses, without the generic checks.
  if (token === '0.0.0.0' || token === '127.0.0.1' || token === '::' || token === '::1') return 'address';
  if (isIPv4(token)) return token === '255.255.255.255' ? 'housekeeping' : 'address';
  if (token.indexOf(':') === -1) return null;
  const zone = token.indexOf('%');
  const addr = (zone === -1 ? token : token.slice(0, zone)).toLowerCase();
  if (!isIPv6(addr)) return null;
  if (zone !== -1) return 'housekeeping';
  const first = addr.slice(0, addr.indexOf(':'));
  if (first.length === 4 && first.startsWith('ff')) return 'housekeeping';
  if (first.length === 4 && first >= 'fe80' && first <= 'febf') return 'housekeeping';
  if (addr === 'fe00::' || addr === 'fe00::0') return 'housekeeping';
  return 'address';
}

function isHousekeepingName(name: string): boolean {
  if (HOUSEKEEPING_NAMES.has(name)) return true;
  // Only pay for lowercasing when the name could be an uppercase spelling of one of the above.
  const c = name.charCodeAt(0);
  return (c === 0x4c || c === 0x42 || c === 0x49) && HOUSEKEEPING_NAMES.has(name.toLowerCase());
}

function entry(name: string): ParsedLine {
  if (isHousekeepingName(name)) return SKIP;
  return { kind: 'rule', name, action: 'block', scope: 'exact' };
}

export const parseHosts: LineParser = (line) => {
  const unreadable = rejectUnreadable(line);
  if (unreadable) return unreadable;
  // `#` starts a comment anywhere on a hosts line; no name or address may contain it.
  let end = line.indexOf('#');
  if (end === -1) end = line.length;
  let i = skipSpace(line, 0, end);
  if (i === end) return SKIP;
  let j = skipToken(line, i, end);
  const kind = addressKind(line.slice(i, j));
  if (kind === null) return invalid('not-an-ip');
  i = skipSpace(line, j, end);
  if (i === end) return invalid('no-name');
  if (kind === 'housekeeping') return SKIP;
  j = skipToken(line, i, end);
  const first = entry(line.slice(i, j));
  i = skipSpace(line, j, end);
  if (i === end) return first;
  const all = [first];
  while (i < end) {
    j = skipToken(line, i, end);
    all.push(entry(line.slice(i, j)));
    i = skipSpace(line, j, end);
  }
  return all;
};
