// unbound.conf fragments: `server:` then `local-zone: "name." <type>`. Zone types that answer
// with an error, an empty/null answer or local data block the zone and everything below it;
// the transparent types let it resolve (an allow). `local-data: "name. A 0.0.0.0"` replaces the
// name's answers (a name with local data answers only that data, NODATA for other types), so it
// blocks that name alone: unbound's way of blocking one name without its subdomains, and how
// `hushdns export --format unbound` writes exact blocks. Names keep their trailing dot here
// (normaliseName strips it). `local-data-ptr:` (reverse records) is unsupported.
import type { Action, LineParser, ParsedLine } from '../types.js';
import { SKIP, indexOutsideQuotes, invalid, rejectUnreadable, rule, skipSpace, skipToken, unsupported } from './common.js';

const ZONE_ACTIONS = new Map<string, Action>([
  ['deny', 'block'],
  ['refuse', 'block'],
  ['static', 'block'],
  ['redirect', 'block'],
  ['inform_deny', 'block'],
  ['inform_redirect', 'block'],
  ['always_nxdomain', 'block'],
  ['always_null', 'block'],
  ['always_refuse', 'block'],
  ['always_deny', 'block'],
  ['always_nodata', 'block'],
  ['transparent', 'allow'],
  ['typetransparent', 'allow'],
  ['inform', 'allow'],
  ['always_transparent', 'allow'],
]);
/** Valid types that are neither: block_a blocks only A queries, nodefault/noview tune defaults. */
const OTHER_ZONE_TYPES = new Set(['block_a', 'nodefault', 'noview']);

export const parseUnbound: LineParser = (line) => {
  const unreadable = rejectUnreadable(line);
  if (unreadable) return unreadable;
  const end = indexOutsideQuotes(line, 0x23 /* # */, 0, line.length);
  let i = skipSpace(line, 0, end);
  if (i === end) return SKIP;
  const colon = line.indexOf(':', i);
  if (colon === -1 || colon > end) return invalid('not-a-directive');
  const key = line.slice(i, colon);
  if (key === 'local-data') return localData(line, colon + 1, end);
  if (key === 'local-data-ptr') return unsupported('local-data-ptr');
  if (key !== 'local-zone') {
    for (let k = 0; k < key.length; k++) {
      const c = key.charCodeAt(k);
      if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d)) return invalid('not-a-directive');
    }
    return SKIP; // `server:`, `forward-zone:`, and any other setting
  }
  i = skipSpace(line, colon + 1, end);
  let name: string;
  if (line.charCodeAt(i) === 0x22 /* " */) {
    const close = line.indexOf('"', i + 1);
    if (close === -1 || close > end) return invalid('unclosed-quote');
    name = line.slice(i + 1, close);
    i = close + 1;
  } else {
    const j = skipToken(line, i, end);
    name = line.slice(i, j);
    i = j;
  }
  if (name.length === 0) return invalid('empty');
  i = skipSpace(line, i, end);
  const j = skipToken(line, i, end);
  if (i === j) return invalid('missing-zone-type');
  const type = line.slice(i, j).toLowerCase();
  const action = ZONE_ACTIONS.get(type);
  if (action !== undefined) return rule(name, action, 'subtree');
  return OTHER_ZONE_TYPES.has(type) ? unsupported(`zone-type:${type}`) : invalid('unknown-zone-type');
};

/** `local-data: "name. [ttl] [class] TYPE data"`: an exact block of the record's owner name. */
function localData(line: string, from: number, end: number): ParsedLine {
  const i = skipSpace(line, from, end);
  if (line.charCodeAt(i) !== 0x22 /* " */) return invalid('unquoted-local-data');
  const close = line.indexOf('"', i + 1);
  if (close === -1 || close > end) return invalid('unclosed-quote');
  const start = skipSpace(line, i + 1, close);
  const nameEnd = skipToken(line, start, close);
  if (nameEnd === start || skipSpace(line, nameEnd, close) === close) return invalid('bad-local-data');
  return rule(line.slice(start, nameEnd), 'block', 'exact');
}
