// A seeded generator of realistic blocklist names: the same seed and count give the same names in
// the same order on every machine and every run, so list files (and their hashes) are comparable
// across runs. Names have 2–4 labels over a weighted TLD mix (com dominates, ccTLDs and
// two-label suffixes such as co.uk appear), word-like labels built from syllables, ad/tracker host
// prefixes, some digits and hyphens, and a few `_` labels as real lists have them.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** Bump when the generator's output changes, so cached files from an older version are not reused. */
export const GENERATOR_VERSION = 1;
export const DEFAULT_SEED = 0x5eed_d05;

export const SIZES = { '100k': 100_000, '1m': 1_000_000, '5m': 5_000_000 } as const;
export type SizeName = keyof typeof SIZES;

export function parseSize(s: string): number {
  const key = s.toLowerCase() as SizeName;
  if (key in SIZES) return SIZES[key];
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(s);
  if (!m) throw new Error(`size ${s}: expected 100k, 1m, 5m or a count such as 25000`);
  const mult = m[2].toLowerCase() === 'm' ? 1_000_000 : m[2].toLowerCase() === 'k' ? 1000 : 1;
  return Math.round(Number(m[1]) * mult);
}

export function sizeLabel(n: number): string {
  if (n % 1_000_000 === 0) return `${n / 1_000_000}M`;
  if (n % 1000 === 0) return `${n / 1000}k`;
  return String(n);
}

/** mulberry32: small, fast and identical everywhere (32-bit integer arithmetic only). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Weighted<T> = readonly (readonly [T, number])[];

function picker<T>(table: Weighted<T>): (r: number) => T {
  const total = table.reduce((s, [, w]) => s + w, 0);
  const cumulative: number[] = [];
  let acc = 0;
  for (const [, w] of table) cumulative.push((acc += w / total));
  return (r) => {
    for (let i = 0; i < cumulative.length; i++) if (r < cumulative[i]) return table[i][0];
    return table[table.length - 1][0];
  };
}

// Roughly the TLD mix of public ad/tracker lists: .com about 40 %, then net/org and a long tail.
const pickTld = picker<string>([
  ['com', 40], ['net', 9], ['org', 5], ['de', 4], ['ru', 4], ['io', 3], ['cn', 3], ['co.uk', 3], ['xyz', 3], ['top', 3],
  ['info', 2], ['br', 2], ['jp', 2], ['fr', 2], ['in', 2], ['nl', 1.5], ['pl', 1.5], ['it', 1.5], ['es', 1], ['app', 1],
  ['tv', 1], ['me', 1], ['co', 1], ['online', 1], ['site', 1], ['club', 1], ['biz', 1], ['us', 1], ['ca', 1],
  ['com.au', 1], ['vn', 1], ['cc', 1], ['com.br', 0.5], ['co.jp', 0.5], ['live', 0.5], ['store', 0.5],
]);

const SYLLABLES = [
  'ka', 'lo', 'mi', 'ne', 'ra', 'to', 'vi', 'sa', 'de', 'po', 'lu', 'ba', 'co', 'fi', 'ga', 'he', 'jo', 'ku', 'ma', 'no',
  'pe', 'qui', 'ri', 'su', 'ta', 've', 'wa', 'xo', 'yu', 'ze', 'an', 'el', 'in', 'on', 'ul', 'ar', 'er', 'ix', 'or', 'us',
  'tra', 'pro', 'net', 'web', 'dat', 'tech', 'soft', 'ad', 'stat', 'cloud', 'link', 'met', 'trk', 'sync', 'pix', 'mob',
  'app', 'vid', 'img', 'shop', 'go', 'my', 'top', 'one', 'hub', 'box', 'ly', 'zen', 'max', 'nova', 'byte', 'bit', 'sky',
  'star', 'fox', 'lab', 'ion', 'ex', 'ify', 'mo', 'da', 'li', 'ro', 'si', 'tu', 'ke', 'ni', 'ha', 'za', 'bo', 'cu',
];

// Host labels that ad, tracking and telemetry lists are full of.
const HOST_PREFIXES = [
  'www', 'cdn', 'api', 'ads', 'ad', 'track', 'tracking', 'metrics', 'log', 'logs', 't', 's', 'img', 'static', 'm', 'app',
  'sdk', 'data', 'stat', 'stats', 'pixel', 'beacon', 'collect', 'events', 'telemetry', 'analytics', 'click', 'sync', 'push',
  'mobile', 'config', 'gw', 'edge', 'rt', 'sb', 'adserver', 'tag', 'tags', 'js', 'cm', 'ssp', 'dsp', 'rtb', 'bid', 'imp',
  'ev', 'e', 'a', 'b', 'c', 'x', 'us', 'eu', 'cn', 'sg', 'in', 'report', 'crash', 'update', 'survey', 'promo', 'banner',
];

const pickLabelCount = picker<number>([[2, 30], [3, 45], [4, 25]]);
const pickSyllableCount = picker<number>([[1, 25], [2, 50], [3, 25]]);

function word(rnd: () => number): string {
  let w = '';
  const n = pickSyllableCount(rnd());
  for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(rnd() * SYLLABLES.length)];
  const r = rnd();
  if (r < 0.12) w += String(Math.floor(rnd() * 1000));
  else if (r < 0.2) w += `-${SYLLABLES[Math.floor(rnd() * SYLLABLES.length)]}${SYLLABLES[Math.floor(rnd() * SYLLABLES.length)]}`;
  return w;
}

function hostLabel(rnd: () => number): string {
  const r = rnd();
  const prefix = HOST_PREFIXES[Math.floor(rnd() * HOST_PREFIXES.length)];
  if (r < 0.45) return prefix;
  if (r < 0.65) return `${prefix}${Math.floor(rnd() * 100)}`;
  if (r < 0.72) return `${prefix}-${Math.floor(rnd() * 20)}`;
  // Real lists carry `_` labels (ad_server, _dmarc-like service labels); a few percent here.
  if (r < 0.74) return `${prefix}_${HOST_PREFIXES[Math.floor(rnd() * HOST_PREFIXES.length)]}`;
  if (r < 0.75) return `_${prefix}`;
  return word(rnd);
}

/** One name (not necessarily unique) from the generator's state. */
function nextName(rnd: () => number): string {
  const tld = pickTld(rnd());
  let name = `${word(rnd)}.${tld}`;
  const labels = pickLabelCount(rnd());
  for (let i = 2; i < labels; i++) name = `${hostLabel(rnd)}.${name}`;
  return name;
}

export interface GenerateOptions {
  /**
   * No name is below another one (no `a.b.example` next to `b.example`), so a list of subtree
   * rules keeps all `count` names after compression, as published (already compressed) lists do.
   */
  independent?: boolean;
}

function hasListedParent(name: string, listed: Set<string>): boolean {
  for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) if (listed.has(name.slice(i + 1))) return true;
  return false;
}

/**
 * Calls `onName` with `count` distinct names, always the same ones in the same order for a seed
 * and options. Holds a Set of the names so far (duplicates are drawn again): about 100 bytes a
 * name, twice that with `independent`.
 */
export function generateNames(count: number, seed: number, onName: (name: string, index: number) => void, opts: GenerateOptions = {}): void {
  const rnd = seededRandom(seed);
  const seen = new Set<string>();
  // Every proper parent of a listed name: a new name equal to one of them would cover a listed one.
  const parents = opts.independent ? new Set<string>() : null;
  const maxDraws = count * 6 + 1000;
  let draws = 0;
  while (seen.size < count) {
    if (++draws > maxDraws) throw new Error(`name generator: only ${seen.size} distinct names after ${maxDraws} draws (count ${count})`);
    const name = nextName(rnd);
    if (seen.has(name)) continue;
    if (parents) {
      if (parents.has(name) || hasListedParent(name, seen)) continue;
      for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) parents.add(name.slice(i + 1));
    }
    seen.add(name);
    onName(name, seen.size - 1);
  }
}

/** The first `count` names as an array (tests and small sizes). */
export function generateNameArray(count: number, seed = DEFAULT_SEED, opts: GenerateOptions = {}): string[] {
  const out: string[] = [];
  generateNames(count, seed, (n) => out.push(n), opts);
  return out;
}

export type ListFormat = 'hosts' | 'adblock' | 'domains';

const LINE: Record<ListFormat, (name: string) => string> = {
  hosts: (n) => `0.0.0.0 ${n}\n`,
  adblock: (n) => `||${n}^\n`,
  domains: (n) => `${n}\n`,
};

const HEADER: Record<ListFormat, string> = { hosts: '#', adblock: '!', domains: '#' };

export interface GeneratedList {
  path: string;
  format: ListFormat;
  count: number;
  seed: number;
  bytes: number;
  sha256: string;
  /** true when the file was written in this call, false when an identical earlier one was reused. */
  written: boolean;
  ms: number;
}

/**
 * Writes (or reuses, when the same generator version, seed, count and format are already on disk)
 * the generated list in `dir`. The sidecar `.sha256` file records the hash of the finished file.
 */
export async function writeGeneratedList(dir: string, count: number, format: ListFormat, seed = DEFAULT_SEED, opts: GenerateOptions = {}): Promise<GeneratedList> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `generated-v${GENERATOR_VERSION}-s${seed.toString(16)}-${count}${opts.independent ? '-independent' : ''}.${format}.txt`);
  const hashPath = `${path}.sha256`;
  const t0 = Date.now();
  if (existsSync(path) && existsSync(hashPath)) {
    return { path, format, count, seed, bytes: statSync(path).size, sha256: readFileSync(hashPath, 'utf8').trim(), written: false, ms: Date.now() - t0 };
  }
  const tmp = `${path}.tmp-${process.pid}`;
  const out = createWriteStream(tmp);
  const hash = createHash('sha256');
  let chunk = `${HEADER[format]} hushdns benchmark list: ${count} generated names${opts.independent ? ' (none below another)' : ''}, seed ${seed}, generator v${GENERATOR_VERSION}\n`;
  const flush = async () => {
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
    chunk = '';
  };
  // The generator is synchronous; collecting the names first lets the writes await the stream.
  const names: string[] = [];
  const line = LINE[format];
  generateNames(count, seed, (n) => names.push(n), opts);
  for (let i = 0; i < names.length; i++) {
    chunk += line(names[i]);
    if (chunk.length >= 1 << 16) await flush();
  }
  await flush();
  out.end();
  await once(out, 'finish');
  renameSync(tmp, path);
  const sha256 = hash.digest('hex');
  writeFileSync(hashPath, `${sha256}\n`);
  return { path, format, count, seed, bytes: statSync(path).size, sha256, written: true, ms: Date.now() - t0 };
}

/** Names of a list file written by writeGeneratedList or exported by hushdns (hosts/domains/adblock), every `stride`-th one. */
export async function sampleNames(path: string, want: number, totalHint: number): Promise<string[]> {
  const stride = Math.max(1, Math.floor(totalHint / Math.max(1, want)));
  const out: string[] = [];
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let i = 0;
  for await (const raw of rl) {
    const name = nameOfLine(raw);
    if (name === null) continue;
    if (i++ % stride === 0) out.push(name);
    if (out.length >= want) break;
  }
  rl.close();
  return out;
}

/** The name on one list line (hosts, adblock `||n^`, plain), null for comments and blanks. */
export function nameOfLine(line: string): string | null {
  const t = line.trim();
  if (t === '' || t[0] === '#' || t[0] === '!') return null;
  if (t.startsWith('||') && t.endsWith('^')) return t.slice(2, -1);
  const space = t.lastIndexOf(' ');
  return space >= 0 ? t.slice(space + 1) : t;
}
