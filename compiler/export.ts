// `hushdns export`: the compiled table as a list another resolver reads. Streams rows in tree order
// (a parent directly before its descendants) and writes what each format can say:
//
// - adblock (AdGuard Home / AdGuard DNS syntax) has the same model as the table: `||name^` covers
//   the subtree, `|name^` the name only, `@@` allows, `$important` marks strong claims, and an
//   allow beats a block unless only the block is important. Every row is written as its claims;
//   nothing is lost but patterns.
// - hosts and domains can only block single names: a name is written when the table blocks the name
//   itself; a subtree the table blocks is counted as lossy once, where it starts.
// - dnsmasq, unbound and rpz pick the most specific entry for a name (longest match), not the
//   highest rank, so they get the table's decisions: for each row the decision for the name itself
//   and for the names below it, with an entry only where that differs from what the nearest entry
//   above already gives. dnsmasq entries (`address=/n/#` blocks, `server=/n/#` forwards normally)
//   always cover the subtree, so a name decided differently from its subtree is lossy. unbound
//   uses `local-zone: "n." always_nxdomain` for a blocked subtree, `always_transparent` to
//   resolve a subtree normally inside a blocked one, and for a name blocked alone `local-data`
//   0.0.0.0/:: for the name (unbound has no zone type for a name without its subtree; local data
//   makes a transparent zone by itself, written out only inside a blocked zone); a name allowed
//   while its subtree is blocked is lossy. rpz writes `n CNAME .` (name) and `*.n CNAME .`
//   (subtree) with `rpz-passthru.` for allows, and loses nothing.
//
// Reading an export back with hushdns's own parsers (test/blocklist-db.test.ts checks it) gives
// the same decisions, for adblock always and for the other formats where they report no loss,
// with one exception: dnsmasq, unbound and rpz let the most specific entry win, while the table
// ranks claims, so a strong ($important or user) block nested inside an allowed subtree reads
// back as a plain block that the allow above beats.
//
// Patterns (regex, globs) are never exported; each counts as lossy.
import { once } from 'node:events';
import { AncestorStack, allowRankBelow, allowRankSelf, blockRankBelow, blockRankSelf, decodeClaim } from '../common/decision.js';
import { SCOPE_MASK, STRONG, STRONG_SELF, Scope } from '../common/schema.js';
import { Blocklist, type BlocklistInfo } from '../server/blocklist.js';

const EXPORT_FORMATS = ['hosts', 'domains', 'adblock', 'dnsmasq', 'unbound', 'rpz'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportResult {
  /** Entries written (one per name and scope expressed). */
  written: number;
  /** Rules and patterns the format could not express exactly. */
  lossy: number;
}

// Export state of a subtree in longest-match formats: what the nearest entry above gives.
const PASS = 0;
const BLOCKED = 1;

const FLUSH_AT = 64 * 1024;

export async function exportTable(dbPath: string, format: ExportFormat, out: NodeJS.WritableStream): Promise<ExportResult> {
  const table = Blocklist.open(dbPath, { cacheSize: 0 });
  try {
    const info = table.info();
    const sink = new ChunkedWriter(out);
    const comment = COMMENT[format];
    for (const line of headerLines(format, info)) sink.line(line === '' ? '' : `${comment} ${line}`);
    if (format === 'rpz') for (const line of rpzZoneHeader(info)) sink.line(line);
    if (format === 'unbound') sink.line('server:');

    const stack = new AncestorStack();
    let written = 0;
    let lossy = info.patterns;
    for (const row of table.ruleRows()) {
      const { name, key, block, allow } = row;
      stack.enter(key);
      const inheritedBlock = stack.inheritedBlock;
      const inheritedAllow = stack.inheritedAllow;
      const above = stack.inheritedTag(PASS);
      // The table's decisions for the name itself and for names below it without rows of their own.
      const self = Math.max(inheritedBlock, blockRankSelf(block)) > Math.max(inheritedAllow, allowRankSelf(allow)) ? BLOCKED : PASS;
      const below = Math.max(inheritedBlock, blockRankBelow(block)) > Math.max(inheritedAllow, allowRankBelow(allow)) ? BLOCKED : PASS;
      const inheritedBelow = inheritedBlock > inheritedAllow ? BLOCKED : PASS;
      let tag = above;

      switch (format) {
        case 'hosts':
        case 'domains':
          if (self === BLOCKED) {
            sink.line(format === 'hosts' ? `0.0.0.0 ${name}` : name);
            written++;
          }
          if (below === BLOCKED && inheritedBelow !== BLOCKED) lossy++;
          break;
        case 'adblock':
          for (const line of adblockLines(name, block, false)) {
            sink.line(line);
            written++;
          }
          for (const line of adblockLines(name, allow, true)) {
            sink.line(line);
            written++;
          }
          break;
        case 'dnsmasq':
          if (self !== below) lossy++;
          if (below !== above) {
            sink.line(below === BLOCKED ? `address=/${name}/#` : `server=/${name}/#`);
            written++;
            tag = below;
          }
          break;
        case 'unbound':
          if (self === below) {
            if (below !== above) {
              sink.line(`local-zone: "${name}." ${below === BLOCKED ? 'always_nxdomain' : 'always_transparent'}`);
              written++;
              tag = below;
            }
          } else if (self === BLOCKED) {
            // Local data alone makes unbound create a transparent zone for the name; only inside
            // a blocked zone must it be written, to let the names below resolve.
            if (above === BLOCKED) sink.line(`local-zone: "${name}." transparent`);
            sink.line(`local-data: "${name}. A 0.0.0.0"`);
            sink.line(`local-data: "${name}. AAAA ::"`);
            written++;
            tag = PASS;
          } else {
            lossy++;
            if (below !== above) {
              sink.line(`local-zone: "${name}." always_nxdomain`);
              written++;
              tag = below;
            }
          }
          break;
        case 'rpz':
          // `*.name` does not cover the name itself in RPZ, but readers that take it as the whole
          // subtree (ours among them) would let it decide the name: write the name's own record
          // whenever it differs from the subtree's.
          if (self !== above || (below !== above && self !== below)) {
            sink.line(`${name} CNAME ${self === BLOCKED ? '.' : 'rpz-passthru.'}`);
            written++;
          }
          if (below !== above) {
            sink.line(`*.${name} CNAME ${below === BLOCKED ? '.' : 'rpz-passthru.'}`);
            written++;
            tag = below;
          }
          break;
      }
      stack.push(key, block, allow, tag);
      if (sink.size >= FLUSH_AT) await sink.flush();
    }
    sink.line(`${COMMENT[format]} end: ${written} entries written, ${lossy} not expressible exactly in ${format}`);
    await sink.flush();
    return { written, lossy };
  } finally {
    table.close();
  }
}

const COMMENT: Record<ExportFormat, string> = { hosts: '#', domains: '#', adblock: '!', dnsmasq: '#', unbound: '#', rpz: ';' };

const LOSS_NOTE: Record<ExportFormat, string> = {
  hosts: 'hosts lines block single names: where hushdns blocks a whole subtree only its top name is listed here.',
  domains: 'plain domain lines block single names: where hushdns blocks a whole subtree only its top name is listed here.',
  adblock: 'AdGuard DNS filtering syntax: ||name^ covers subdomains, |name^ the name only, @@ allows, $important wins.',
  dnsmasq: 'dnsmasq entries always cover subdomains: a name decided differently from its subdomains is counted as lossy.',
  unbound: 'include inside unbound.conf; the most specific local-zone wins. A name allowed while its subdomains are blocked is counted as lossy.',
  rpz: 'response policy zone: exact names and *.name wildcards, rpz-passthru. for allows.',
};

function headerLines(format: ExportFormat, info: BlocklistInfo): string[] {
  return [
    `hushdns blocklist export (${format})`,
    `built ${new Date(info.builtAt).toISOString()} by hushdns ${info.compilerVersion ?? ''}`.trimEnd(),
    `${info.rules} rules from ${info.sources.length} sources: ${info.sources.map((s) => s.name).join(', ')}`,
    LOSS_NOTE[format],
    info.patterns > 0 ? `${info.patterns} patterns (regex/glob) are not exported.` : 'no patterns to leave out.',
    '',
  ];
}

function rpzZoneHeader(info: BlocklistInfo): string[] {
  const serial = Math.floor(info.builtAt / 1000) % 0x100000000;
  return ['$TTL 300', `@ IN SOA localhost. hostmaster.localhost. ${serial} 3600 600 86400 300`, '@ IN NS localhost.', ''];
}

/** One action's claim on a row in adblock syntax (a STRONG_SELF claim takes two lines). */
function adblockLines(name: string, v: number, allow: boolean): string[] {
  if (decodeClaim(v) === null) return [];
  const at = allow ? '@@' : '';
  if ((v & SCOPE_MASK) === Scope.Exact) return [`${at}|${name}^${v & STRONG ? '$important' : ''}`];
  if (v & STRONG) return [`${at}||${name}^$important`];
  if (v & STRONG_SELF) return [`${at}||${name}^`, `${at}|${name}^$important`];
  return [`${at}||${name}^`];
}

/** Collects lines into chunks and honours the stream's backpressure. */
class ChunkedWriter {
  private buf = '';

  constructor(private readonly out: NodeJS.WritableStream) {}

  get size(): number {
    return this.buf.length;
  }

  line(s: string): void {
    this.buf += `${s}\n`;
  }

  async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    const chunk = this.buf;
    this.buf = '';
    if (!this.out.write(chunk)) await once(this.out as NodeJS.EventEmitter, 'drain');
  }
}
