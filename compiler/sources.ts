// Which lists one compile reads: the bundled vendor and allow lists, the registry's default
// public lists, lists named in the config file, `--source` arguments and the user's own entries.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { LISTS_DIR } from '../common/paths.js';
import { isListFormat, type Action, type ListFormat } from './types.js';
import { UserError } from '../common/errors.js';

/** Formats of our own files, on top of the public formats the parsers know. */
export type SourceFormat = ListFormat | 'curated' | 'allowlist';

export interface SourceSpec {
  id: string;
  /** http(s) URL, or null for a local file. */
  url: string | null;
  /** Local file to read (set for local sources; set for remote ones after fetching). */
  path: string | null;
  /** null: detect from the content. */
  format: SourceFormat | null;
  /** hosts and plain-domain lists are exact unless the source says otherwise. */
  match: 'exact' | 'subtree' | null;
  /** Every rule of this list becomes an allow (an allow list written in any format). */
  action: Action | null;
  vendor: string | null;
  category: string | null;
  license: string | null;
  /** The compile fails when a required source fails. */
  required: boolean;
  /** Entries dropped from this source only (exact, *.wildcard, /regex/). */
  exclude: string[];
  /** When not empty, only the entries of this source that match one of these are kept. */
  include: string[];
  origin: 'bundled' | 'registry' | 'config' | 'cli';
}

export interface RegistryEntry {
  id: string;
  name: string;
  homepage?: string;
  url: string;
  format: string;
  license?: string;
  vendor?: string | null;
  category?: string | null;
  approxEntries?: number;
  default: boolean;
  match?: 'exact' | 'subtree';
  note?: string;
}

export class SourceError extends UserError {
  readonly code = 'bad-source';
  /** One line per problem (selectSources reports every bad source together). */
  readonly problems: string[];
  constructor(problems: string | string[]) {
    const list = Array.isArray(problems) ? problems : [problems];
    super(list.join('; '));
    this.problems = list;
  }
}

const SOURCE_KEYS = new Set(['id', 'url', 'path', 'format', 'match', 'action', 'vendor', 'exclude', 'include', 'required']);

export function readRegistry(listsDir = LISTS_DIR): RegistryEntry[] {
  const file = join(listsDir, 'sources.json');
  if (!existsSync(file)) return [];
  return JSON.parse(readFileSync(file, 'utf8')) as RegistryEntry[];
}

const blank = (id: string, origin: SourceSpec['origin']): SourceSpec => ({
  id,
  url: null,
  path: null,
  format: null,
  match: null,
  action: null,
  vendor: null,
  category: null,
  license: null,
  required: false,
  exclude: [],
  include: [],
  origin,
});

/** Our own lists: every lists/vendors/*.txt (curated) and lists/allow/*.txt. */
export function bundledSources(listsDir = LISTS_DIR): SourceSpec[] {
  const out: SourceSpec[] = [];
  for (const [sub, format, prefix] of [
    ['vendors', 'curated', 'hushdns-'],
    ['allow', 'allowlist', 'hushdns-allow-'],
  ] as const) {
    const dir = join(listsDir, sub);
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
      const id = prefix + basename(file, '.txt');
      out.push({
        ...blank(id, 'bundled'),
        path: join(dir, file),
        format,
        match: 'subtree',
        action: format === 'allowlist' ? 'allow' : 'block',
        vendor: format === 'curated' ? vendorOfCuratedFile(join(dir, file)) : null,
        category: format === 'curated' ? 'telemetry' : 'allow',
        license: 'MIT',
        required: true,
      });
    }
  }
  return out;
}

/** The `# vendor: id` line at the top of a curated list. */
function vendorOfCuratedFile(path: string): string | null {
  const head = readFileSync(path, 'utf8').slice(0, 4096);
  const m = /^#\s*vendor:\s*([a-z0-9-]+)/m.exec(head);
  return m ? m[1] : null;
}

export function fromRegistry(entry: RegistryEntry): SourceSpec {
  if (!isListFormat(entry.format)) throw new SourceError(`registry entry ${entry.id}: unknown format ${entry.format}`);
  return {
    ...blank(entry.id, 'registry'),
    url: entry.url,
    format: entry.format,
    match: entry.match ?? null,
    vendor: entry.vendor ?? null,
    category: entry.category ?? null,
    license: entry.license ?? null,
  };
}

/**
 * A `--source` argument or a string in the config's `sources`: a registry id, an http(s) URL or a
 * path, with an optional `#format` suffix.
 */
export function fromArgument(arg: string, origin: 'cli' | 'config', registry: RegistryEntry[], baseDir = process.cwd()): SourceSpec {
  const hash = arg.lastIndexOf('#');
  let target = arg;
  let format: SourceFormat | null = null;
  if (hash > 0) {
    const suffix = arg.slice(hash + 1);
    if (!isListFormat(suffix)) {
      throw new SourceError(`source ${arg}: unknown format #${suffix}; use one of #hosts, #domains, #adblock, #wildcard, #dnsmasq, #unbound, #rpz, #regex`);
    }
    format = suffix;
    target = arg.slice(0, hash);
  }
  const known = registry.find((e) => e.id === target);
  if (known) return { ...fromRegistry(known), origin, format: format ?? (known.format as ListFormat) };
  if (/^https?:\/\//i.test(target)) return { ...blank(idFromUrl(target), origin), url: target, format };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target) && !target.startsWith('file://')) {
    throw new SourceError(`source ${arg}: only http(s) URLs and local files are supported`);
  }
  const path = resolve(baseDir, target.startsWith('file://') ? new URL(target).pathname : target);
  if (!existsSync(path)) throw new SourceError(`source ${arg}: no such file ${path} and not a registry id (see lists/sources.json)`);
  return { ...blank(`file-${basename(path).replace(/[^a-zA-Z0-9._-]/g, '_')}`, origin), path, format };
}

/** A config-file source object: {id?, url | path, format?, match?, vendor?, exclude?, include?, required?, action?}. */
function fromConfigObject(obj: Record<string, unknown>, registry: RegistryEntry[], baseDir: string): SourceSpec {
  const where = `sources entry ${JSON.stringify(obj)}`;
  const unknown = Object.keys(obj).filter((k) => !SOURCE_KEYS.has(k));
  if (unknown.length > 0) throw new SourceError(`${where}: unknown key ${unknown.join(', ')} (known: ${[...SOURCE_KEYS].join(', ')})`);
  const target = (obj.url ?? obj.path ?? obj.id) as unknown;
  if (typeof target !== 'string') throw new SourceError(`${where}: needs url, path or a registry id`);
  const spec = fromArgument(target, 'config', registry, baseDir);
  if (typeof obj.id === 'string' && (obj.url || obj.path)) spec.id = obj.id;
  if (obj.format !== undefined) {
    if (typeof obj.format !== 'string' || !isListFormat(obj.format)) throw new SourceError(`${where}: unknown format ${String(obj.format)}`);
    spec.format = obj.format;
  }
  if (obj.match !== undefined) {
    if (obj.match !== 'exact' && obj.match !== 'subtree') throw new SourceError(`${where}: match must be exact or subtree`);
    spec.match = obj.match;
  }
  if (obj.action !== undefined) {
    if (obj.action !== 'block' && obj.action !== 'allow') throw new SourceError(`${where}: action must be block or allow`);
    spec.action = obj.action;
  }
  if (typeof obj.vendor === 'string') spec.vendor = obj.vendor;
  if (obj.required === true) spec.required = true;
  for (const key of ['exclude', 'include'] as const) {
    const v = obj[key];
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.some((p) => typeof p !== 'string')) throw new SourceError(`${where}: ${key} must be a list of names, *.wildcards or /regexes/`);
    spec[key] = v as string[];
  }
  return spec;
}

function idFromUrl(url: string): string {
  const u = new URL(url);
  const last = u.pathname.split('/').filter(Boolean).slice(-2).join('-') || 'list';
  return `${u.hostname}-${last}`.replace(/[^a-zA-Z0-9._-]/g, '_').slice(0, 80);
}

export interface SourceSelection {
  bundled: boolean;
  defaultSources: boolean;
  configSources: unknown[];
  cliSources: string[];
  configDir: string;
}

/** The whole set for one compile, ids made unique, in a stable order. */
export function selectSources(sel: SourceSelection, listsDir = LISTS_DIR): SourceSpec[] {
  const registry = readRegistry(listsDir);
  const out: SourceSpec[] = [];
  const problems: string[] = [];
  // Every bad source is reported at once, so one run of `config check` or `compile` shows them all.
  const add = (make: () => SourceSpec): void => {
    try {
      out.push(make());
    } catch (err) {
      if (!(err instanceof SourceError)) throw err;
      problems.push(...err.problems);
    }
  };
  if (sel.bundled) out.push(...bundledSources(listsDir));
  if (sel.defaultSources) registry.filter((e) => e.default).forEach((e) => add(() => fromRegistry(e)));
  sel.configSources.forEach((s, i) =>
    add(() => {
      try {
        if (typeof s === 'string') return fromArgument(s, 'config', registry, sel.configDir);
        if (s && typeof s === 'object' && !Array.isArray(s)) return fromConfigObject(s as Record<string, unknown>, registry, sel.configDir);
        throw new SourceError(`expected a registry id, a URL, a path or an object, got ${JSON.stringify(s)}`);
      } catch (err) {
        if (err instanceof SourceError) throw new SourceError(err.problems.map((p) => `sources[${i}]: ${p}`));
        throw err;
      }
    }),
  );
  for (const s of sel.cliSources) add(() => fromArgument(s, 'cli', registry));
  if (problems.length > 0) throw new SourceError(problems);
  const seen = new Map<string, number>();
  const unique: SourceSpec[] = [];
  for (const spec of out) {
    const dupe = unique.find((u) => (u.url ?? u.path) === (spec.url ?? spec.path));
    if (dupe) continue; // the same list named twice (registry default and config) is read once
    const n = seen.get(spec.id) ?? 0;
    seen.set(spec.id, n + 1);
    unique.push(n === 0 ? spec : { ...spec, id: `${spec.id}-${n + 1}` });
  }
  return unique;
}
