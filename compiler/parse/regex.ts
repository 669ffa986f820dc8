// Pi-hole regex lists: one POSIX extended regex per line, matched against the queried name,
// `#` comments. The pattern is returned as JavaScript RegExp source (POSIX bracket classes such
// as `[[:digit:]]` rewritten, since JS would read them as plain character sets), after checking it
// compiles. Pi-hole's `;querytype=` / `;reply=` / `;invert` extensions restrict or change the
// match in ways a name table cannot hold: unsupported. A regex that matches any name (`.`, `.*`)
// would black out the network: unsupported 'too-broad'.
import type { LineParser } from '../types.js';
import { SKIP, invalid, isSpace, rejectUnreadable, unsupported } from './common.js';

const POSIX_CLASSES: Record<string, string> = {
  alpha: 'a-zA-Z',
  digit: '0-9',
  alnum: 'a-zA-Z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v',
  blank: ' \\t',
  xdigit: '0-9A-Fa-f',
  punct: '!-\\/:-@\\[-`{-~',
};
const POSIX_CLASS = /\[:([a-z]+):\]/g;
const EXTENSION = /;(querytype|reply|invert)\b/;
/** Names no sensible blocking regex matches all of. */
const PROBES = ['example.org', 'hushdns-probe.invalid', 'a.b.c.d.e.f.g'];

export const parseRegex: LineParser = (line) => {
  const unreadable = rejectUnreadable(line);
  if (unreadable) return unreadable;
  let s = line.trim();
  if (s.length === 0 || s.charCodeAt(0) === 0x23 /* # */) return SKIP;
  // ` # why` after a regex is a comment; a `#` not preceded by a blank stays part of the regex.
  for (let i = 1; i < s.length; i++) {
    if (s.charCodeAt(i) === 0x23 && isSpace(s.charCodeAt(i - 1))) {
      s = s.slice(0, i).trimEnd();
      break;
    }
  }
  if (EXTENSION.test(s)) return unsupported('regex-extension');
  if (s.indexOf('[:') !== -1) {
    let unknown = false;
    s = s.replace(POSIX_CLASS, (whole, cls: string) => {
      const js = POSIX_CLASSES[cls];
      if (js === undefined) unknown = true;
      return js ?? whole;
    });
    if (unknown) return unsupported('posix-class');
  }
  let re: RegExp;
  try {
    re = new RegExp(s);
  } catch {
    return invalid('bad-regex');
  }
  if (PROBES.every((p) => re.test(p))) return unsupported('too-broad');
  return { kind: 'pattern', patternKind: 'regex', pattern: s, action: 'block' };
};
