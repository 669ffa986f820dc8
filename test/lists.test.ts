// The bundled lists (lists/vendors, lists/allow, vendors.json, sources.json) and the parser of our
// own list format. Everything here reads the real files in lists/, so a bad edit fails a test.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSameOrSubdomain, normaliseName } from '../common/names.js';
import { LISTS_DIR } from '../common/paths.js';
import { getDomain } from 'tldts';
import { VENDOR_KINDS, VendorCatalog, deviceEvidence, type Vendor } from '../common/vendors.js';
import { allowListParser, curatedParser, describeList, type DescribedList, type ListEntry } from '../compiler/parse/curated.js';
import { bundledSources, fromRegistry, readRegistry } from '../compiler/sources.js';
import { isListFormat, type LineParser, type ParsedLine } from '../compiler/types.js';

type Rule = Extract<ParsedLine, { kind: 'rule' }>;

function run(parser: LineParser, text: string): ParsedLine[] {
  const out: ParsedLine[] = [];
  for (const raw of text.split('\n')) {
    const r = parser(raw.endsWith('\r') ? raw.slice(0, -1) : raw);
    if (Array.isArray(r)) out.push(...r);
    else out.push(r);
  }
  return out;
}

const rules = (items: ParsedLine[]): Rule[] => items.filter((p): p is Rule => p.kind === 'rule');
const invalids = (items: ParsedLine[]) => items.filter((p) => p.kind === 'invalid');

interface ListFile {
  file: string;
  text: string;
  list: DescribedList;
}

function readDir(sub: 'vendors' | 'allow'): ListFile[] {
  const dir = join(LISTS_DIR, sub);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((file) => {
      const text = readFileSync(join(dir, file), 'utf8');
      return { file, text, list: describeList(text, sub === 'vendors' ? 'curated' : 'allow') };
    });
}

const vendorFiles = readDir('vendors');
const allowFiles = readDir('allow');
const catalogJson = JSON.parse(readFileSync(join(LISTS_DIR, 'vendors.json'), 'utf8')) as Record<string, unknown>[];
const catalog = VendorCatalog.load(LISTS_DIR);
const registry = readRegistry(LISTS_DIR);
const registryJson = JSON.parse(readFileSync(join(LISTS_DIR, 'sources.json'), 'utf8')) as Record<string, unknown>[];

const commentOf = (e: ListEntry): string => [e.comment, e.groupComment].filter(Boolean).join(' ');

/** Lists without a `# vendor:` line gather names of many companies; the catalog attributes each name. */
const isAggregate = (f: ListFile): boolean => f.list.vendor === null;
/** The catalog vendor a rule of this list carries: the file's own, or the name's for an aggregate list. */
const ruleVendor = (f: ListFile, name: string): string | null => f.list.vendor ?? catalog.vendorOf(name)?.id ?? null;

describe('the curated list parser', () => {
  const sample = [
    '# vendor: example',
    'tracking.example.org   # entries before any header are standard',
    '',
    '[strict]',
    '# may break: the example feed',
    'feed.example.org',
    '[standard]',
    'ads.example.org#no space before the comment',
    '   ',
    '\tmetrics.example.org\t',
  ].join('\n');

  it('returns standard entries only at level standard, as subtree blocks', () => {
    const got = rules(run(curatedParser('standard'), sample));
    expect(got.map((r) => r.name)).toEqual(['tracking.example.org', 'ads.example.org', 'metrics.example.org']);
    for (const r of got) expect(r).toMatchObject({ action: 'block', scope: 'subtree' });
  });

  it('returns the entries of both sections at level strict, in file order', () => {
    expect(rules(run(curatedParser('strict'), sample)).map((r) => r.name)).toEqual([
      'tracking.example.org',
      'feed.example.org',
      'ads.example.org',
      'metrics.example.org',
    ]);
  });

  it('skips blank lines, comments and section headers', () => {
    const got = run(curatedParser('strict'), sample);
    expect(got.filter((p) => p.kind === 'skip')).toHaveLength(6);
    expect(invalids(got)).toEqual([]);
  });

  it('gives each parser its own section state', () => {
    const a = curatedParser('standard');
    const b = curatedParser('standard');
    expect(a('[strict]')).toEqual({ kind: 'skip' });
    expect(a('hidden.example.org')).toEqual({ kind: 'skip' });
    expect(b('shown.example.org')).toMatchObject({ kind: 'rule', name: 'shown.example.org' });
  });

  it.each([
    ['a.example.org b.example.org', 'several-names'],
    ['a.example.org\tb.example.org # two', 'several-names'],
    ['*.example.org', 'wildcard'],
    ['ads*.example.org', 'wildcard'],
    ['https://example.org/track', 'url-or-address'],
    ['example.org/track', 'url-or-address'],
    ['::1', 'url-or-address'],
    ['||example.org^', 'adblock-syntax'],
    ['@@example.org', 'adblock-syntax'],
    ['example.org$important', 'adblock-syntax'],
    ['Tracking.Example.org', 'uppercase'],
    ['exa!mple.org', 'bad-character'],
    ['.example.org', 'edge-dot'],
    ['example.org.', 'edge-dot'],
    ['[bogus]', 'unknown-section'],
    ['[strict', 'bad-section-header'],
    ['=', 'bad-character'],
    ['==example.org', 'bad-character'],
    ['= example.org', 'several-names'],
  ])('rejects %j as %s at both levels', (line, reason) => {
    const standard = curatedParser('standard');
    standard('[strict]'); // malformed lines are reported even where the level skips entries
    expect(standard(line)).toEqual({ kind: 'invalid', reason });
    expect(curatedParser('strict')(line)).toEqual({ kind: 'invalid', reason });
  });

  it('accepts underscores and digits, which real DNS labels carry', () => {
    expect(curatedParser('standard')('_dmarc.mail-1.example.org')).toMatchObject({ kind: 'rule', name: '_dmarc.mail-1.example.org' });
  });

  it('reads =name as the name alone, a plain name as the name and its subdomains', () => {
    expect(curatedParser('standard')('=metrics.example.org  # only this host')).toEqual({ kind: 'rule', name: 'metrics.example.org', action: 'block', scope: 'exact' });
    expect(curatedParser('standard')('metrics.example.org')).toEqual({ kind: 'rule', name: 'metrics.example.org', action: 'block', scope: 'subtree' });
    expect(allowListParser()('=push.example.org')).toEqual({ kind: 'rule', name: 'push.example.org', action: 'allow', scope: 'exact' });
  });
});

describe('the allow list parser', () => {
  it('returns subtree allows and skips comments', () => {
    const got = run(allowListParser(), '# time\ntime.example.org  # NTP\n\nclock.example.net');
    expect(rules(got)).toEqual([
      { kind: 'rule', name: 'time.example.org', action: 'allow', scope: 'subtree' },
      { kind: 'rule', name: 'clock.example.net', action: 'allow', scope: 'subtree' },
    ]);
  });

  it('rejects section headers, which only block lists have', () => {
    expect(allowListParser()('[strict]')).toEqual({ kind: 'invalid', reason: 'section-in-allow-list' });
  });

  it('rejects malformed lines like the block list parser does', () => {
    expect(allowListParser()('*.example.org')).toEqual({ kind: 'invalid', reason: 'wildcard' });
  });
});

describe('describeList', () => {
  const text = [
    '# vendor: example-tv',
    '# Example TVs.',
    '',
    '# Ads on the home screen.',
    'ads.example.org',
    'ad2.example.org   # the second ad server',
    '',
    'lonely.example.org',
    '# Metrics, one group',
    '# over two lines.',
    'metrics.example.org',
    '[strict]',
    '# Breaks: the feed.',
    'feed.example.org\r',
    'bad entry',
  ].join('\n');
  const d = describeList(text, 'curated');

  it('reads the vendor id from the header comments', () => {
    expect(d.vendor).toBe('example-tv');
  });

  it('attaches each group comment to the entries right below it, until a blank line', () => {
    const byName = new Map(d.entries.map((e) => [e.name, e]));
    expect(byName.get('ads.example.org')).toMatchObject({ level: 'standard', line: 5, comment: null, groupComment: 'Ads on the home screen.' });
    expect(byName.get('ad2.example.org')).toMatchObject({ comment: 'the second ad server', groupComment: 'Ads on the home screen.' });
    expect(byName.get('lonely.example.org')).toMatchObject({ comment: null, groupComment: null });
    expect(byName.get('metrics.example.org')).toMatchObject({ groupComment: 'Metrics, one group over two lines.' });
    expect(byName.get('feed.example.org')).toMatchObject({ level: 'strict', groupComment: 'Breaks: the feed.' });
  });

  it('reports malformed lines with their line number', () => {
    expect(d.invalid).toEqual([{ line: 15, text: 'bad entry', reason: 'several-names' }]);
  });

  it('flags section headers in allow lists', () => {
    expect(describeList('[strict]\na.example.org', 'allow').invalid).toEqual([{ line: 1, text: '[strict]', reason: 'section-in-allow-list' }]);
  });
});

describe('lists/vendors', () => {
  it('has a list for every vendor the issue names, and names for every ACR company', () => {
    const ids = vendorFiles.map((f) => f.list.vendor);
    for (const id of ['xiaomi', 'huawei', 'honor', 'oppo', 'vivo', 'samsung', 'samsung-tv', 'transsion', 'lenovo', 'lg', 'tcl', 'roku', 'vizio', 'hisense', 'amazon', 'microsoft']) {
      expect(ids).toContain(id);
    }
    const aggregated = new Set(vendorFiles.filter(isAggregate).flatMap((f) => f.list.entries.map((e) => ruleVendor(f, e.name))));
    for (const id of ['alphonso', 'samba-tv', 'inscape', 'google-sdk', 'appsflyer', 'braze', 'clevertap', 'moengage', 'sensorsdata', 'talkingdata']) expect(aggregated).toContain(id);
  });

  it.each(vendorFiles.map((f) => [f.file, f] as const))('%s has both levels, and a [strict] section that says what it may break', (_file, f) => {
    const lines = f.text.split('\n').map((l) => l.trim());
    const at = lines.indexOf('[strict]');
    expect(at, `${f.file} has no [strict] section`).toBeGreaterThan(-1);
    expect(f.list.entries.some((e) => e.level === 'standard'), `${f.file} has no standard entry`).toBe(true);
    const strict = f.list.entries.filter((e) => e.level === 'strict');
    // an empty strict section still explains itself: why nothing more is blocked, and what would break
    if (strict.length === 0) expect(lines.slice(at + 1).join(' '), `${f.file}: empty [strict] without a reason`).toMatch(/break/i);
  });

  it.each(vendorFiles.map((f) => [f.file, f] as const))('%s parses with no invalid line at either level', (_file, f) => {
    const standard = run(curatedParser('standard'), f.text);
    const strict = run(curatedParser('strict'), f.text);
    expect(invalids(standard)).toEqual([]);
    expect(invalids(strict)).toEqual([]);
    expect(f.list.invalid).toEqual([]);
    const std = rules(standard).map((r) => r.name);
    const all = rules(strict).map((r) => r.name);
    expect(std.length).toBeGreaterThan(0);
    expect(all.length).toBeGreaterThanOrEqual(std.length);
    for (const n of std) expect(all).toContain(n);
    // describeList sees the same entries as the parser the compiler uses
    expect(f.list.entries.map((e) => e.name)).toEqual(all);
    expect(f.list.entries.filter((e) => e.level === 'standard').map((e) => e.name)).toEqual(std);
  });

  it.each(vendorFiles.map((f) => [f.file, f] as const))('%s holds only names that are already normal', (_file, f) => {
    for (const e of f.list.entries) {
      const n = normaliseName(e.name);
      expect(n, `${f.file}:${e.line} ${e.name}`).toEqual({ ok: true, name: e.name });
    }
  });

  it.each(vendorFiles.map((f) => [f.file, f] as const))('%s lists every name once and never under a name that already covers it', (_file, f) => {
    const seen = new Set<string>();
    for (const e of f.list.entries) {
      expect(seen.has(e.name), `${f.file}:${e.line} duplicate ${e.name}`).toBe(false);
      seen.add(e.name);
    }
    for (const e of f.list.entries) {
      for (const p of f.list.entries) {
        if (p === e || !isSameOrSubdomain(e.name, p.name)) continue;
        // a strict parent may widen standard children; anything else is dead weight
        const redundant = p.level === 'standard' || e.level === 'strict';
        expect(redundant, `${f.file}:${e.line} ${e.name} is already covered by ${p.name} (line ${p.line})`).toBe(false);
      }
    }
  });

  it.each(vendorFiles.map((f) => [f.file, f] as const))('%s explains every entry, and every strict entry says what may break', (_file, f) => {
    for (const e of f.list.entries) {
      const why = commentOf(e);
      expect(why.length, `${f.file}:${e.line} ${e.name} has no comment`).toBeGreaterThan(0);
      if (e.level === 'strict') expect(why, `${f.file}:${e.line} ${e.name} does not say what may break`).toMatch(/break/i);
      if (why.includes('[own]')) expect(why, `${f.file}:${e.line} ${e.name}: [own] needs a reason after it`).toMatch(/\[own\]\s*\S.{9,}/);
    }
  });

  it.each(vendorFiles.map((f) => [f.file, f] as const))('%s names its catalog vendor after the file, or none when it gathers several companies', (_file, f) => {
    if (isAggregate(f)) {
      expect(f.text, `${f.file}: a list without a vendor line must say how its names are attributed`).toMatch(/Attribution: this list names no vendor of its own/);
      return;
    }
    expect(f.list.vendor).toBe(basename(f.file, '.txt'));
    expect(catalog.byId(f.list.vendor!)).toBeDefined();
  });

  it.each(vendorFiles.map((f) => [f.file, f] as const))('%s only holds names the catalog attributes to the vendor its rules carry', (_file, f) => {
    for (const e of f.list.entries) {
      const v = catalog.vendorOf(e.name);
      expect(v, `${f.file}:${e.line} ${e.name} belongs to no catalog vendor`).not.toBeNull();
      if (isAggregate(f)) {
        // names any device reaches: an aggregate list must not make its rules say what the client is
        expect(deviceEvidence(v!.kind), `${f.file}:${e.line} ${e.name} is attributed to ${v!.id}, a ${v!.kind} vendor`).toBe(0);
      } else {
        expect(v!.id, `${f.file}:${e.line} ${e.name}`).toBe(f.list.vendor);
      }
    }
  });

  it('never lets a rule lend its vendor to a name the catalog gives to another vendor', () => {
    // A blocked query carries the vendor of the most specific rule that matched. A subtree rule of
    // a device vendor over a name the catalog gives elsewhere (logs.roku.com over the phone app's
    // mobile.logs.roku.com) would label that name's client as the device, unless the name has a
    // rule of its own at the same level.
    const listed = new Map<string, 'standard' | 'strict'>();
    for (const f of vendorFiles) for (const e of f.list.entries) if (listed.get(e.name) !== 'standard') listed.set(e.name, e.level);
    const suffixes = catalog.vendors.flatMap((v) => v.suffixes);
    const problems: string[] = [];
    for (const f of vendorFiles) {
      for (const e of f.list.entries) {
        const mine = ruleVendor(f, e.name);
        for (const s of suffixes) {
          if (s === e.name || !isSameOrSubdomain(s, e.name)) continue;
          const theirs = catalog.vendorOf(s)!.id;
          if (theirs === mine) continue;
          const own = listed.get(s);
          if (own === 'standard' || own === e.level) continue;
          problems.push(`${f.file}:${e.line} ${e.name} (${mine}) covers ${s}, which the catalog gives to ${theirs}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('is found by the compiler as bundled sources, each with its vendor (none for a list of several companies)', () => {
    const bundled = bundledSources(LISTS_DIR).filter((s) => s.format === 'curated');
    expect(bundled.map((s) => s.id).sort()).toEqual(vendorFiles.map((f) => `hushdns-${basename(f.file, '.txt')}`).sort());
    for (const s of bundled) {
      const f = vendorFiles.find((v) => `hushdns-${basename(v.file, '.txt')}` === s.id)!;
      expect(s.vendor).toBe(isAggregate(f) ? null : s.id.slice('hushdns-'.length));
    }
  });
});

describe('lists/allow', () => {
  const allNames = allowFiles.flatMap((f) => f.list.entries.map((e) => ({ file: f.file, entry: e })));
  const vendorEntries = vendorFiles.flatMap((f) => f.list.entries.map((e) => ({ file: f.file, entry: e })));

  it('covers connectivity checks, time, push, updates and stores, and accounts', () => {
    expect(allowFiles.map((f) => f.file).sort()).toEqual(['accounts.txt', 'connectivity.txt', 'push.txt', 'time.txt', 'updates-and-stores.txt']);
  });

  it.each(allowFiles.map((f) => [f.file, f] as const))('%s parses with no invalid line and only normal names', (_file, f) => {
    const parsed = run(allowListParser(), f.text);
    expect(invalids(parsed)).toEqual([]);
    expect(f.list.invalid).toEqual([]);
    expect(rules(parsed).map((r) => r.name)).toEqual(f.list.entries.map((e) => e.name));
    for (const e of f.list.entries) expect(normaliseName(e.name), `${f.file}:${e.line}`).toEqual({ ok: true, name: e.name });
  });

  it.each(allowFiles.map((f) => [f.file, f] as const))('%s explains every entry', (_file, f) => {
    for (const e of f.list.entries) expect(commentOf(e).length, `${f.file}:${e.line} ${e.name}`).toBeGreaterThan(0);
  });

  it('lists every name once across all allow files', () => {
    const seen = new Map<string, string>();
    for (const { file, entry } of allNames) {
      expect(seen.get(entry.name), `${entry.name} in ${file} and ${seen.get(entry.name)}`).toBeUndefined();
      seen.set(entry.name, file);
    }
  });

  it('allows a whole registrable domain only where its comment says why', () => {
    const unexplained = allNames.filter(({ entry }) => getDomain(entry.name) === entry.name && !/whole domain:/.test(commentOf(entry)));
    expect(unexplained.map(({ entry }) => entry.name)).toEqual([]);
  });

  it('has no name that a vendor list blocks, at standard or strict', () => {
    const clashes: string[] = [];
    for (const a of allNames) {
      for (const b of vendorEntries) {
        if (isSameOrSubdomain(a.entry.name, b.entry.name)) clashes.push(`${a.entry.name} (${a.file}) is blocked by ${b.entry.name} (${b.file}, ${b.entry.level})`);
        else if (isSameOrSubdomain(b.entry.name, a.entry.name)) clashes.push(`${b.entry.name} (${b.file}) lies under allowed ${a.entry.name} (${a.file}) and can never block`);
      }
    }
    expect(clashes).toEqual([]);
  });
});

describe('lists/vendors.json', () => {
  const KINDS: readonly string[] = VENDOR_KINDS;

  it('has complete entries with unique ids', () => {
    const ids = new Set<string>();
    for (const v of catalogJson) {
      expect(typeof v.id === 'string' && /^[a-z0-9]+(-[a-z0-9]+)*$/.test(v.id), JSON.stringify(v)).toBe(true);
      expect(ids.has(v.id as string), `duplicate id ${String(v.id)}`).toBe(false);
      ids.add(v.id as string);
      expect(typeof v.name === 'string' && v.name.length > 0, String(v.id)).toBe(true);
      expect(KINDS, String(v.id)).toContain(v.kind);
      expect(Array.isArray(v.suffixes), String(v.id)).toBe(true);
      // only a kind that says what the client is carries a device description
      if (deviceEvidence(v.kind as Vendor['kind']) > 0) expect(typeof v.device === 'string' && v.device.length > 0, `${String(v.id)} needs a device`).toBe(true);
      else expect(v.device, `${String(v.id)} is a ${String(v.kind)} vendor and implies no device`).toBeUndefined();
      expect(Array.isArray(v.suffixes) && (v.suffixes as unknown[]).length > 0, `${String(v.id)} has no suffixes`).toBe(true);
      const extra = Object.keys(v).filter((k) => !['id', 'name', 'kind', 'device', 'suffixes'].includes(k));
      expect(extra, String(v.id)).toEqual([]);
    }
  });

  it('holds normal names, each claimed by one vendor only', () => {
    const owner = new Map<string, string>();
    for (const v of catalogJson as unknown as Vendor[]) {
      for (const s of v.suffixes) {
        // a vendor may claim a suffix that is itself public (googleapis.com): Google runs all of it
        const n = normaliseName(s);
        expect(n.ok ? n.name : n.reason === 'public-suffix' ? s : n.reason, `${v.id}: ${s}`).toBe(s);
        expect(owner.get(s), `${s} claimed by ${v.id} and ${owner.get(s)}`).toBeUndefined();
        owner.set(s, v.id);
      }
    }
  });

  it('attributes queries by their longest matching suffix', () => {
    expect(catalog.vendorOf('data.mistat.xiaomi.com')?.id).toBe('xiaomi');
    expect(catalog.vendorOf('firebaselogging-pa.googleapis.com')?.id).toBe('google-sdk');
    expect(catalog.vendorOf('connectivitycheck.gstatic.com')?.id).toBe('android');
    expect(catalog.vendorOf('www.gstatic.com')?.id).toBe('google');
    expect(catalog.vendorOf('log-ingestion.samsungacr.com')?.device).toBe('Samsung smart TV');
    expect(catalog.vendorOf('mobile.logs.roku.com')?.id).toBe('roku-web');
    expect(catalog.vendorOf('scribe.logs.roku.com')?.id).toBe('roku');
    expect(catalog.vendorOf('unrelated.example.org')).toBeNull();
  });

  it('gives no device to names that any laptop, or any phone with the maker’s app, reaches', () => {
    // What a laptop or an iPhone resolves when its owner shops, watches and reads: none of it may
    // make the catalog say "Fire TV", "Galaxy phone" or "LG TV".
    const anyDevice = [
      'www.amazon.com', 'fls-na.amazon.com', 'm.media-amazon.com', 'images-na.ssl-images-amazon.com', 'aax-us-east.amazon-adsystem.com', 'c.amazon-adsystem.com',
      'www.primevideo.com', 'atv-ps.amazon.com', 'api.amazonvideo.com', 'device-metrics-us-2.amazon.com', 'alexa.amazon.com', 'api.amazonalexa.com',
      'www.samsung.com', 'smetrics.samsung.com', 'account.samsung.com', 'shop.samsung.com', 'nmetrics.samsungmobile.com',
      'www.lg.com', 'www.lge.com', 'gscs.lge.com', 'aic-service.lgthinq.com', 'lgads.tv',
      'www.roku.com', 'my.roku.com', 'mobile.logs.roku.com', 'pixel.web.roku.com', 'display.ravm.tv',
      'www.mi.com', 'account.xiaomi.com', 'api.io.mi.com', 'de.api.io.mi.com', 'home.mi.com', 'stat.youpin.mi.com',
      'www.huawei.com', 'consumer.huawei.com', 'www.vmall.com', 'obs.cn-north-4.myhuaweicloud.com', 'www.petalsearch.com',
      'www.lenovo.com', 'pcsupport.lenovo.com', 'tracking.lenovo.com', 'chifsr.lenovomm.com', 'uss.lenovomm.com', 'www.motorola.com',
      'www.oppo.com', 'www.oneplus.com', 'www.realme.com', 'id.heytap.com', 'www.vivo.com', 'www.hihonor.com', 'www.honor.com',
      'www.vizio.com', 'www.hisense.com', 'analytics.shop.hisense.com', 'www.tcl.com', 'www.tct-teye.com', 'www.transsion.com',
      'www.apple.com', 'securemetrics.apple.com', 'www.google.com', 'www.youtube.com', 'rr3---sn-4g5e6nsz.googlevideo.com', 'mtalk.google.com',
      'www.bing.com', 'www.msn.com', 'outlook.office.com', 'events.data.microsoft.com', 'login.live.com',
      'prov.alphonso.tv', 'www.samba.tv', 'platform.cid.samba.tv', 'control.tvinteractive.tv', 'app-measurement.com', 'www.netflix.com',
    ];
    const implying = anyDevice.map((n) => ({ n, v: catalog.vendorOf(n) })).filter(({ v }) => v && deviceEvidence(v.kind) > 0);
    expect(implying.map(({ n, v }) => `${n} → ${v!.id} (${v!.kind})`)).toEqual([]);
  });

  it('recognises devices by names only they contact', () => {
    const only: [string, string][] = [
      ['fireoscaptiveportal.com', 'amazon-devices'], ['softwareupdates.amazon.com', 'amazon-devices'], ['device-messaging-na.amazon.com', 'amazon-devices'],
      ['tracking.intl.miui.com', 'xiaomi'], ['connect.rom.miui.com', 'xiaomi'], ['data.mistat.xiaomi.com', 'xiaomi'],
      ['dc.di.atlas.samsung.com', 'samsung'], ['fota-cloud-dn.ospserver.net', 'samsung'], ['log-ingestion.samsungacr.com', 'samsung-tv'],
      ['us.lgtvsdp.com', 'lg'], ['snu.lge.com', 'lg'], ['captive.roku.com', 'roku'], ['scribe.logs.roku.com', 'roku'],
      ['hw-tdp-o.api.leiniao.com', 'tcl'], ['api.vizio.com', 'vizio'], ['api-4know-eu.hismarttv.com', 'hisense'],
      ['www.msftconnecttest.com', 'windows'], ['connectivitycheck.gstatic.com', 'android'], ['captive.apple.com', 'apple'],
    ];
    for (const [name, id] of only) {
      const v = catalog.vendorOf(name);
      expect(v?.id, name).toBe(id);
      expect(deviceEvidence(v!.kind), name).toBeGreaterThan(0);
    }
  });
});

describe('lists/sources.json', () => {
  const CATEGORIES = ['telemetry', 'tracking', 'ads', 'general'];

  it('has complete entries with unique ids, https URLs and formats the compiler parses', () => {
    const ids = new Set<string>();
    for (const e of registryJson) {
      const id = String(e.id);
      expect(/^[a-z0-9]+(-[a-z0-9]+)*$/.test(id), id).toBe(true);
      expect(id.startsWith('hushdns-'), `${id} would clash with bundled ids`).toBe(false);
      expect(ids.has(id), `duplicate ${id}`).toBe(false);
      ids.add(id);
      for (const k of ['name', 'homepage', 'url', 'format', 'license', 'category']) {
        expect(typeof e[k] === 'string' && (e[k] as string).length > 0, `${id}.${k}`).toBe(true);
      }
      expect(new URL(e.url as string).protocol, `${id}.url`).toBe('https:');
      expect(new URL(e.homepage as string).protocol, `${id}.homepage`).toBe('https:');
      expect(isListFormat(e.format as string), `${id}.format ${String(e.format)}`).toBe(true);
      expect(CATEGORIES, `${id}.category`).toContain(e.category);
      expect('vendor' in e, `${id}.vendor`).toBe(true);
      if (e.vendor !== null) expect(catalog.byId(e.vendor as string), `${id}.vendor ${String(e.vendor)}`).toBeDefined();
      expect(Number.isInteger(e.approxEntries) && (e.approxEntries as number) > 0, `${id}.approxEntries`).toBe(true);
      expect(typeof e.default, `${id}.default`).toBe('boolean');
      if (e.match !== undefined) expect(['exact', 'subtree'], `${id}.match`).toContain(e.match);
      if (e.default === false) expect(typeof e.note === 'string' && /off by default/i.test(e.note), `${id} must say why it is off`).toBe(true);
    }
  });

  it('turns every entry into a compiler source', () => {
    for (const e of registry) {
      const spec = fromRegistry(e);
      expect(spec).toMatchObject({ id: e.id, url: e.url, format: e.format, origin: 'registry' });
    }
  });

  it('carries hagezi native lists for every vendor hagezi covers, and Perflyst, WindowsSpyBlocker and AdGuard CNAME lists', () => {
    const ids = registry.map((e) => e.id);
    for (const v of ['xiaomi', 'huawei', 'oppo-realme', 'vivo', 'samsung', 'lgwebos', 'tiktok', 'amazon', 'winoffice', 'roku', 'apple']) {
      expect(ids).toContain(`hagezi-native-${v}`);
    }
    for (const id of ['perflyst-android-tracking', 'perflyst-smarttv', 'windowsspyblocker-spy', 'adguard-cname-trackers', 'hagezi-light', 'oisd-small', 'adguard-dns-filter', 'stevenblack-unified']) {
      expect(ids).toContain(id);
    }
  });

  it('turns on one general list at most, so the defaults stay small and safe', () => {
    expect(registry.filter((e) => e.default && e.category === 'general').map((e) => e.id)).toEqual(['hagezi-light']);
    expect(registry.filter((e) => e.default).length).toBeGreaterThan(0);
  });
});
