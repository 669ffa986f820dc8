// The one typed definition of every setting. CLI flags (yargs), HUSHDNS_* environment variables
// and the config file (YAML or JSON) all map onto it, in that precedence; validation runs once
// and reports every problem together, then the result is frozen.
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { createRequire } from 'node:module';
import { UserError } from './errors.js';

type Kind = 'string' | 'int' | 'bool' | 'list' | 'duration' | 'bytes' | 'enum' | 'map';

export interface FieldDef<K extends Kind = Kind> {
  kind: K;
  /** Default as it would be written in a config file (durations as '2s', sizes as '64MiB'). */
  default: unknown;
  help: string;
  choices?: readonly string[];
  min?: number;
  max?: number;
  /** Settings that only make sense in the config file (structured values). */
  fileOnly?: boolean;
  /** Which commands show the flag. */
  scope: 'serve' | 'compile' | 'both';
  /** Extra per-item validation of list values (for maps: of each key); returns a message or null. */
  check?: (value: string) => string | null;
  /** Whole numbers only: the word `auto` (stored as 0) picks a value from the machine or other settings. */
  auto?: boolean;
  /** A running server takes a change only when restarted; SIGHUP applies every other serve setting at once. */
  restart?: boolean;
}

const hostPort = (v: string): string | null => (parseHostPort(v) ? null : 'expected HOST:PORT such as 0.0.0.0:53, [::]:53 or 127.0.0.1:5353');

/** Every setting, keyed by its config-file / flag name. Order is the order of the docs. */
export const FIELDS = {
  'data-dir': { kind: 'string', default: './data', restart: true, scope: 'both', help: 'Folder for the compiled blocklist, the list cache and the query log' },
  'dns-listen': {
    restart: true,
    kind: 'list',
    default: ['0.0.0.0:53', '[::]:53'],
    scope: 'serve',
    check: hostPort,
    help: 'Address and port to answer DNS on (UDP and TCP); repeat for several, [::1]:5353 for IPv6',
  },
  'http-listen': { kind: 'string', default: '0.0.0.0:8080', restart: true, scope: 'serve', check: hostPort, help: 'Address and port of the HTTP API, metrics and dashboard' },
  upstream: {
    kind: 'list',
    default: ['https://1.1.1.1/dns-query', 'https://9.9.9.9/dns-query'],
    scope: 'serve',
    help: 'Upstream resolver: udp://IP:53, tcp://IP:53, tls://NAME@IP:853 or https://HOST/dns-query (repeatable; IP-based defaults need no bootstrap DNS)',
  },
  'upstream-strategy': { kind: 'enum', default: 'failover', choices: ['failover', 'race'], scope: 'serve', help: 'failover: in order, skipping unhealthy ones; race: ask several at once, take the first answer' },
  'upstream-timeout': { kind: 'duration', default: '2s', min: 50, max: 30_000, scope: 'serve', help: 'How long to wait for one upstream before trying the next' },
  workers: {
    restart: true,
    kind: 'int',
    default: 1,
    min: 1,
    max: 16,
    auto: true,
    scope: 'serve',
    help: 'DNS worker processes; auto: one per core, at most 4. Each costs about 40 MB; one answers tens of thousands of queries a second, more than a household asks',
  },
  'refresh-interval': { kind: 'duration', default: '24h', min: 0, scope: 'serve', help: 'How often the server re-fetches and recompiles its lists (0 turns scheduled refresh off)' },
  'block-mode': {
    kind: 'enum',
    default: 'null',
    choices: ['null', 'nxdomain', 'nodata', 'refused', 'custom'],
    scope: 'serve',
    help: 'Answer for blocked names: null (0.0.0.0 / ::), nxdomain, nodata, refused, or custom (--block-ip)',
  },
  'block-ip': { kind: 'list', default: [], scope: 'serve', check: (v) => (isIp(v) ? null : 'expected an IPv4 or IPv6 address'), help: 'Addresses answered for blocked names with --block-mode custom (one IPv4 and/or one IPv6)' },
  'block-ttl': { kind: 'duration', default: '60s', min: 0, max: 86_400_000, scope: 'serve', help: 'TTL of blocked answers' },
  'block-private-relay': { kind: 'bool', default: true, scope: 'serve', help: 'Answer iCloud Private Relay names with NXDOMAIN so Apple devices keep using this resolver' },
  'allow-clients': {
    kind: 'list',
    default: ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', 'fc00::/7', 'fe80::/10'],
    scope: 'serve',
    check: (v) => (parseCidr(v) ? null : 'expected an address range such as 192.168.1.0/24 or fd00::/8'),
    help: 'Client address ranges that get answers; everyone else gets REFUSED (never an open resolver)',
  },
  'rate-limit': { kind: 'int', default: 1000, min: 0, scope: 'serve', help: 'Queries one client may send per --rate-limit-window (0 turns the limit off)' },
  'rate-limit-window': { kind: 'duration', default: '60s', min: 1000, scope: 'serve', help: 'Window of the per-client rate limit' },
  'rate-limit-loopback': { kind: 'bool', default: false, scope: 'serve', help: "Also rate-limit loopback clients (the host's own tools and health checks are exempt by default)" },
  'cache-size': { kind: 'int', default: 20_000, min: 0, scope: 'serve', help: 'Answers kept in the cache (0 turns the cache off)' },
  'cache-max-bytes': { kind: 'bytes', default: '32MiB', min: 0, scope: 'serve', help: 'Upper bound on the memory the answer cache holds' },
  'cache-min-ttl': { kind: 'duration', default: '0s', min: 0, scope: 'serve', help: 'Lowest TTL an answer is cached for' },
  'cache-max-ttl': { kind: 'duration', default: '1d', min: 0, scope: 'serve', help: 'Highest TTL an answer is cached for' },
  'serve-stale': { kind: 'bool', default: true, scope: 'serve', help: 'Answer from expired cache entries when every upstream fails (RFC 8767)' },
  'serve-stale-max-age': { kind: 'duration', default: '1d', min: 0, scope: 'serve', help: 'How long after expiry an answer may still be served stale' },
  prefetch: { kind: 'bool', default: true, scope: 'serve', help: 'Refresh popular cache entries shortly before they expire' },
  'local-domain': { kind: 'string', default: '', scope: 'serve', help: "The LAN's domain (e.g. lan, fritz.box): its names and private reverse lookups go to --local-upstream" },
  'local-upstream': { kind: 'string', default: '', scope: 'serve', help: 'The router (udp://192.168.1.1:53) that answers LAN names and private reverse lookups' },
  memory: {
    kind: 'enum',
    default: 'small',
    choices: ['small', 'speed'],
    restart: true,
    scope: 'serve',
    help: "small: V8 collects garbage sooner, so memory stays near its loaded size after floods of new names (Pi-sized); speed: V8's defaults, more forwarding throughput (15-40 %) on a very busy network",
  },
  'log-level': { kind: 'enum', default: 'info', choices: ['debug', 'info', 'warn', 'error'], restart: true, scope: 'both', help: 'Least important log level written' },
  source: { kind: 'list', default: [], scope: 'compile', help: 'Extra list for this run: URL or path, optional #format suffix (e.g. ./my.txt#hosts); repeatable' },
  'default-sources': { kind: 'bool', default: true, scope: 'compile', help: 'Include the registry lists that are on by default (lists/sources.json); --no-default-sources leaves them out' },
  bundled: { kind: 'bool', default: true, scope: 'compile', help: 'Include the bundled vendor lists (lists/vendors); --no-bundled leaves them out' },
  level: { kind: 'enum', default: 'standard', choices: ['standard', 'strict'], scope: 'compile', help: 'Level of the bundled vendor lists: standard keeps every phone feature working, strict blocks more' },
  'fetch-timeout': { kind: 'duration', default: '30s', min: 100, scope: 'compile', help: 'Deadline for downloading one list, retries included; past it the last good copy is used' },
  'fetch-concurrency': { kind: 'int', default: 4, min: 1, max: 32, scope: 'compile', help: 'Lists downloaded at once' },
  'max-list-bytes': { kind: 'bytes', default: '64MiB', min: 1024, scope: 'compile', help: 'Largest list accepted (after decompression)' },
  sources: { kind: 'list', default: [], fileOnly: true, scope: 'compile', help: 'Config file only: lists by registry id or as {id, url, format, match, vendor, exclude, include, required}' },
  allow: { kind: 'list', default: [], fileOnly: true, scope: 'both', help: 'Config file only: names never blocked (the name and its subdomains; prefix = for the exact name)' },
  deny: { kind: 'list', default: [], fileOnly: true, scope: 'both', help: 'Config file only: names always blocked (the name and its subdomains; prefix = for the exact name)' },
  exclude: { kind: 'list', default: [], fileOnly: true, scope: 'compile', help: 'Config file only: list entries dropped from every source: exact name, *.wildcard or /regex/' },
  include: {
    kind: 'list',
    default: [],
    fileOnly: true,
    scope: 'compile',
    help: 'Config file only: when set, only list entries that match are kept (every source): exact name, *.wildcard or /regex/',
  },
  'local-records': { kind: 'list', default: [], fileOnly: true, scope: 'serve', help: 'Config file only: your own answers, as {name, type: A|AAAA|CNAME|PTR|TXT, value, ttl?}' },
  devices: {
    restart: true,
    kind: 'map',
    default: {},
    fileOnly: true,
    scope: 'serve',
    check: (v) => (isIp(v) || isMac(v) ? null : 'expected an IP address or a MAC address such as aa:bb:cc:dd:ee:ff'),
    help: 'Config file only: names for your devices, by IP or MAC address (192.168.1.23: Living room TV)',
  },
  querylog: { kind: 'enum', default: 'disk', choices: ['disk', 'memory', 'off'], restart: true, scope: 'serve', help: 'Query log: disk (DATA_DIR/querylog.sqlite), memory (nothing written to disk; for SD cards) or off' },
  'querylog-retention': { kind: 'duration', default: '7d', min: 3_600_000, restart: true, scope: 'serve', help: 'How long the query log and its statistics are kept' },
  'querylog-max-size': { kind: 'bytes', default: '256MiB', min: 1024 * 1024, restart: true, scope: 'serve', help: 'Largest the query log may grow (on disk, or in memory with --querylog memory); the oldest queries go first' },
  'querylog-flush-interval': { kind: 'duration', default: '5s', min: 100, max: 300_000, restart: true, scope: 'serve', help: 'How often logged queries are written, in one batch (long intervals spare SD cards)' },
  'querylog-queue': {
    restart: true,
    kind: 'int',
    default: 'auto',
    min: 1000,
    max: 10_000_000,
    auto: true,
    scope: 'serve',
    help: 'Queries held in memory between writes (37 bytes each); beyond that they are dropped from the log (never delayed) and counted. auto: one flush interval at 50,000 q/s and half again (375,000 at 5s, at most 1,000,000), grown only as traffic needs',
  },
  'querylog-anonymise': {
    restart: true,
    kind: 'enum',
    default: 'off',
    choices: ['off', 'truncate', 'hash'],
    scope: 'serve',
    help: 'Client addresses in the log: off (as they are), truncate (IPv4 /24, IPv6 /56) or hash (a pseudonym that changes at every restart)',
  },
  'querylog-exclude-clients': {
    restart: true,
    kind: 'list',
    default: [],
    fileOnly: true,
    scope: 'serve',
    check: (v) => (parseCidr(v) ? null : 'expected an address or range such as 192.168.1.50 or 192.168.1.0/24'),
    help: 'Config file only: clients whose queries are never logged (addresses or ranges)',
  },
  'querylog-exclude-names': { kind: 'list', default: [], fileOnly: true, restart: true, scope: 'serve', help: 'Config file only: names never logged (the name and its subdomains; prefix = for the exact name)' },
  'api-token': {
    restart: true,
    kind: 'string',
    default: 'auto',
    scope: 'serve',
    check: (v) => (v === 'auto' || v === 'off' || v.length >= 16 ? null : 'expected auto, off, or a token of at least 16 characters'),
    help: 'Bearer token for changes through the HTTP API: auto (generated once into DATA_DIR/api-token), off (no changes), or your own (16+ characters)',
  },
  'http-hosts': {
    restart: true,
    kind: 'list',
    default: [],
    fileOnly: true,
    scope: 'serve',
    help: 'Config file only: extra host names the dashboard may be opened by (IP addresses and LAN names always work; others are refused against DNS rebinding)',
  },
} as const satisfies Record<string, FieldDef>;

export type FieldName = keyof typeof FIELDS;

type ValueOf<F> = F extends { kind: 'int' | 'duration' | 'bytes' }
  ? number
  : F extends { kind: 'bool' }
    ? boolean
    : F extends { kind: 'list' }
      ? unknown[]
      : F extends { kind: 'map' }
        ? Readonly<Record<string, string>>
        : string;

/** The validated, frozen configuration. Durations are in milliseconds, sizes in bytes. */
export type Config = { readonly [K in FieldName]: ValueOf<(typeof FIELDS)[K]> };

export type Origin = 'default' | 'file' | 'env' | 'flag';

export interface LoadedConfig {
  config: Config;
  origins: Record<FieldName, Origin>;
  file: string | null;
  /** The flags as given, so the configuration can be read again with the same flags on top. */
  flags: Readonly<Record<string, unknown>>;
}

export class ConfigError extends UserError {
  readonly code = 'bad-config';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export function envName(field: string): string {
  return `HUSHDNS_${field.toUpperCase().replace(/-/g, '_')}`;
}

/**
 * Merge defaults ← config file ← environment ← flags and validate. `flags` holds only the values
 * the user actually gave (yargs defaults are left out so precedence stays honest).
 */
export function loadConfig(opts: {
  flags?: Partial<Record<string, unknown>>;
  env?: NodeJS.ProcessEnv;
  file?: string | null;
}): LoadedConfig {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  const filePath = opts.file ?? env.HUSHDNS_CONFIG ?? null;
  let fileValues: Record<string, unknown> = {};
  if (filePath) {
    try {
      fileValues = readConfigFile(filePath);
    } catch (err) {
      throw new ConfigError([`config file ${filePath}: ${(err as Error).message}`]);
    }
    for (const key of Object.keys(fileValues)) {
      if (!(key in FIELDS)) problems.push(`${key} (in ${filePath}): unknown setting; known settings are listed by \`hushdns config print\``);
    }
  }

  const raw: Record<string, unknown> = {};
  const origins = {} as Record<FieldName, Origin>;
  for (const [name, def] of Object.entries(FIELDS) as [FieldName, FieldDef][]) {
    let value: unknown = def.default;
    let origin: Origin = 'default';
    if (name in fileValues) {
      value = fileValues[name];
      origin = 'file';
    }
    const envValue = def.fileOnly ? undefined : env[envName(name)];
    if (envValue !== undefined && envValue !== '') {
      value = def.kind === 'list' ? envValue.split(',').map((s) => s.trim()).filter(Boolean) : envValue;
      origin = 'env';
    }
    const flag = opts.flags?.[name];
    if (flag !== undefined && !def.fileOnly) {
      value = flag;
      origin = 'flag';
    }
    origins[name] = origin;
    const where = origin === 'default' ? 'default' : origin === 'file' ? `from ${filePath}` : origin === 'env' ? `from ${envName(name)}` : `from --${name}`;
    raw[name] = coerce(name, def, value, where, problems);
  }
  crossCheck(raw, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: Object.freeze(raw) as unknown as Config, origins, file: filePath, flags: { ...opts.flags } };
}

/** The configuration read again (SIGHUP): the same flags and file, the file's and environment's values as they are now. */
export function reloadConfig(loaded: LoadedConfig): LoadedConfig {
  return loadConfig({ flags: loaded.flags, file: loaded.file });
}

/** Settings whose value differs between two configurations. */
export function changedSettings(before: Config, after: Config): FieldName[] {
  return (Object.keys(FIELDS) as FieldName[]).filter((name) => JSON.stringify(before[name]) !== JSON.stringify(after[name]));
}

function readConfigFile(path: string): Record<string, unknown> {
  const text = readFileSync(path, 'utf8');
  const parsed: unknown = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('expected a mapping of setting names to values at the top level');
  return parsed as Record<string, unknown>;
}

function coerce(name: string, def: FieldDef, value: unknown, where: string, problems: string[]): unknown {
  const bad = (what: string) => {
    problems.push(`${name} = ${JSON.stringify(value)} (${where}): ${what}`);
    return def.kind === 'list' ? [] : def.default;
  };
  switch (def.kind) {
    case 'string':
      if (typeof value !== 'string') return bad('expected text');
      if (value !== '' && def.check) {
        const msg = def.check(value);
        if (msg) return bad(msg);
      }
      return value;
    case 'enum':
      // YAML reads a bare `block-mode: null` as no value at all; the user meant the word.
      if (value === null && def.choices!.includes('null')) return 'null';
      if (typeof value !== 'string' || !def.choices!.includes(value)) return bad(`expected one of ${def.choices!.join(', ')}`);
      return value;
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && /^(true|yes|on|1)$/i.test(value)) return true;
      if (typeof value === 'string' && /^(false|no|off|0)$/i.test(value)) return false;
      return bad('expected true or false');
    case 'int': {
      if (def.auto && typeof value === 'string' && value.trim().toLowerCase() === 'auto') return 0;
      const n = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
      if (!Number.isInteger(n)) return bad(def.auto ? 'expected a whole number or auto' : 'expected a whole number');
      return inRange(n, def, bad);
    }
    case 'duration': {
      const ms = parseDuration(value);
      if (ms === null) return bad('expected a duration such as 500ms, 2s, 10m, 24h or 7d (a bare number means seconds)');
      return inRange(ms, def, bad, formatDuration);
    }
    case 'bytes': {
      const n = parseBytes(value);
      if (n === null) return bad('expected a size such as 512KiB, 64MiB or 1GiB');
      return inRange(n, def, bad);
    }
    case 'list': {
      const items = Array.isArray(value) ? value : typeof value === 'string' ? [value] : null;
      if (!items) return bad('expected a list');
      if (def.check) {
        items.forEach((item, i) => {
          const msg = typeof item === 'string' ? def.check!(item) : 'expected text';
          if (msg) problems.push(`${name}[${i}] = ${JSON.stringify(item)} (${where}): ${msg}`);
        });
      }
      return items;
    }
    case 'map': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('expected a mapping of keys to text');
      const out: Record<string, string> = {};
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
        const msg = typeof item !== 'string' && typeof item !== 'number' ? 'expected text' : def.check ? def.check(key) : null;
        if (msg) problems.push(`${name}.${key} = ${JSON.stringify(item)} (${where}): ${msg}`);
        else out[key] = String(item);
      }
      return out;
    }
  }
}

function inRange(n: number, def: FieldDef, bad: (what: string) => unknown, fmt: (n: number) => string = String): unknown {
  if (def.min !== undefined && n < def.min) return bad(`must be at least ${fmt(def.min)}`);
  if (def.max !== undefined && n > def.max) return bad(`must be at most ${fmt(def.max)}`);
  return n;
}

function crossCheck(raw: Record<string, unknown>, problems: string[]): void {
  if (raw['block-mode'] === 'custom' && (raw['block-ip'] as unknown[]).length === 0) {
    problems.push('block-ip: --block-mode custom needs at least one address, e.g. --block-ip 192.168.1.2');
  }
  if ((raw['local-upstream'] as string) !== '' && (raw['local-domain'] as string) === '') {
    problems.push('local-domain: --local-upstream is set but --local-domain is empty; name the LAN domain (e.g. lan or fritz.box)');
  }
  if ((raw['dns-listen'] as unknown[]).length === 0) problems.push('dns-listen: at least one address is needed, e.g. --dns-listen 0.0.0.0:53');
  if ((raw.upstream as unknown[]).length === 0) problems.push('upstream: at least one upstream resolver is needed, e.g. --upstream https://1.1.1.1/dns-query');
}

export function parseDuration(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : null;
  if (typeof value !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
  if (!m) return null;
  const unit = (m[2] ?? 's').toLowerCase();
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit]!;
  return Math.round(Number(m[1]) * factor);
}

export function formatDuration(ms: number): string {
  for (const [unit, f] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= f && ms % f === 0) return `${ms / f}${unit}`;
  }
  return `${ms}ms`;
}

export function parseBytes(value: unknown): number | null {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : null;
  if (typeof value !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?\s*$/i.exec(value);
  if (!m) return null;
  const unit = (m[2] ?? 'b').toLowerCase();
  const f = unit === 'b' ? 1 : unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 ** 2 : 1024 ** 3;
  return Math.round(Number(m[1]) * f);
}

export function parseHostPort(v: string): { host: string; port: number } | null {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(v) ?? /^([^:[\]]+):(\d+)$/.exec(v);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 0 || port > 65535) return null;
  return { host: m[1], port };
}

/** A MAC address written with colons or dashes: aa:bb:cc:dd:ee:ff. */
export function isMac(v: string): boolean {
  return /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(v);
}

export function isIp(v: string): boolean {
  return parseIp(v) !== null;
}

/** IPv4 or IPv6 address to bytes (4 or 16), null when not an address. */
export function parseIp(v: string): Buffer | null {
  if (isIPv4(v)) return Buffer.from(v.split('.').map(Number));
  if (!isIPv6(v)) return null;
  let s = v.includes('%') ? v.slice(0, v.indexOf('%')) : v;
  const lastColon = s.lastIndexOf(':');
  const dotted = s.slice(lastColon + 1);
  if (dotted.includes('.')) {
    const b = dotted.split('.').map(Number);
    s = `${s.slice(0, lastColon + 1)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const groups = (part: string | undefined) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const words = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

export interface Cidr {
  bytes: Buffer;
  prefix: number;
}

export function parseCidr(v: string): Cidr | null {
  const slash = v.indexOf('/');
  const addr = parseIp(slash === -1 ? v : v.slice(0, slash));
  if (!addr) return null;
  const max = addr.length * 8;
  const prefix = slash === -1 ? max : Number(v.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return null;
  return { bytes: addr, prefix };
}

/** The YAML parser (several MB resident) loads only when a YAML config file is read. */
function parseYaml(text: string): unknown {
  const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yaml.parse(text);
}
