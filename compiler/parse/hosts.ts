// hosts files: `IP name [name…] [# comment]`. Every name is an exact block whatever the address
// (0.0.0.0, 127.0.0.1, ::, ::1, or a real address some lists redirect to). The lines an OS hosts
// file needs for itself (localhost, broadcast, IPv6 link-local and multicast) are skipped, not
// counted as bad, since nearly every big list ships them in its header.
import { isIPv4, isIPv6 } from 'node:net';
import { isHousekeepingName } from '../../common/names.js';
import type { LineParser, ParsedLine } from '../types.js';
import { SKIP, invalid, rejectUnreadable, skipSpace, skipToken } from './common.js';

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
  // Nearly every line of a big list starts with 0.0.0.0: no slice for it.
  const kind = j - i === 7 && line.startsWith('0.0.0.0', i) ? 'address' : addressKind(line.slice(i, j));
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
