// One entry point for the compile pipeline: the parser for a format, and format detection.
import type { LineParser, ListFormat } from '../types.js';
import { parseAdblock } from './adblock.js';
import { parseDnsmasq } from './dnsmasq.js';
import { parseDomains } from './domains.js';
import { parseHosts } from './hosts.js';
import { parseRegex } from './regex.js';
import { createRpzParser } from './rpz.js';
import { parseUnbound } from './unbound.js';
import { parseWildcard } from './wildcard.js';

export { detectFormat, detectFormatDetailed, DETECT_SAMPLE_LINES, type Detection } from './detect.js';

/**
 * The parser for one list of the given format. Call it once per list and feed it that list's
 * lines in order: the rpz parser keeps state across lines ($ORIGIN, multi-line records), so two
 * lists must never share one. The other formats are stateless and come back as shared functions.
 */
export function parserFor(format: ListFormat): LineParser {
  switch (format) {
    case 'hosts':
      return parseHosts;
    case 'domains':
      return parseDomains;
    case 'wildcard':
      return parseWildcard;
    case 'adblock':
      return parseAdblock;
    case 'dnsmasq':
      return parseDnsmasq;
    case 'unbound':
      return parseUnbound;
    case 'rpz':
      return createRpzParser();
    case 'regex':
      return parseRegex;
  }
}
