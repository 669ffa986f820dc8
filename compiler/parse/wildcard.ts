// Wildcard lists (dnscrypt-proxy style, hagezi "wildcard"): `*.name` and a bare `name` both mean
// the name and everything below it (hagezi's `-onlydomains` variant drops the `*.`). A `*` anywhere
// else (`*.ads*.msads.net`, `ads.*.example.com`) cannot be a suffix rule and becomes a glob
// pattern. dnscrypt-proxy's `=name` (exact match only) is honoured as an exact rule.
import type { LineParser } from '../types.js';
import { SKIP, glob, invalid, rejectUnreadable, rule, skipSpace, skipToken } from './common.js';

export const parseWildcard: LineParser = (line) => {
  const unreadable = rejectUnreadable(line);
  if (unreadable) return unreadable;
  let end = line.indexOf('#');
  if (end === -1) end = line.length;
  let i = skipSpace(line, 0, end);
  if (i === end) return SKIP;
  const j = skipToken(line, i, end);
  if (skipSpace(line, j, end) !== end) return invalid('extra-text');
  if (line.charCodeAt(i) === 0x3d /* = */) {
    const name = line.slice(i + 1, j);
    return name.indexOf('*') === -1 ? rule(name, 'block', 'exact') : glob(name, 'exact', 'block');
  }
  if (line.charCodeAt(i) === 0x2a /* * */ && line.charCodeAt(i + 1) === 0x2e /* . */) i += 2;
  const body = line.slice(i, j);
  if (body.length === 0) return invalid('empty');
  return body.indexOf('*') === -1 ? rule(body, 'block', 'subtree') : glob(body, 'subtree', 'block');
};
