// Plain domain lists: one name per line, `#` comments (whole-line or after the name). Each name
// is an exact match, as Pi-hole reads these lists; a commented-out entry (`#ads.example.com`) is a
// comment like any other.
import type { LineParser } from '../types.js';
import { SKIP, invalid, rejectUnreadable, rule, skipSpace, skipToken } from './common.js';

export const parseDomains: LineParser = (line) => {
  const unreadable = rejectUnreadable(line);
  if (unreadable) return unreadable;
  let end = line.indexOf('#');
  if (end === -1) end = line.length;
  const i = skipSpace(line, 0, end);
  if (i === end) return SKIP;
  const j = skipToken(line, i, end);
  // A second field means this is not a domain list line (a hosts line, prose): refuse to guess.
  if (skipSpace(line, j, end) !== end) return invalid('extra-text');
  return rule(line.slice(i, j), 'block', 'exact');
};
