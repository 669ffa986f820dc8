// The user's own changes at runtime, through the API or the dashboard: allow and deny entries
// (kept in DATA_DIR/user-rules.json, in effect at once, no recompile) and pauses of blocking, for
// everyone or one device, that end by themselves. Both sit in front of the compiled table: the
// block stage asks userFirst(...) for a decision, and pauseGate(...) lets a paused client's
// queries pass the block stage untouched.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import { dirname, join } from 'node:path';
import { parseUserEntry, type EntryScope } from '../common/names.js';
import type { VendorCatalog } from '../common/vendors.js';
import type { BlockDecision } from './blocklist.js';
import type { Stage } from './pipeline/types.js';
import type { Decider } from './stages/block.js';

export const USER_RULES_FILE = 'user-rules.json';
export const USER_ALLOW_SOURCE = 'user-allow';
export const USER_DENY_SOURCE = 'user-deny';

export type UserAction = 'allow' | 'deny';

export interface UserEntry {
  action: UserAction;
  name: string;
  /** subtree: the name and every name below it; exact: the name only (written `=name`). */
  scope: 'exact' | 'subtree';
  addedAt: number;
}

export class UserRuleError extends Error {
  readonly code = 'bad-user-rule';
  /** The request field that was wrong (the API answers with it). */
  constructor(
    message: string,
    readonly field: 'name' | 'client' = 'name',
  ) {
    super(message);
  }
}

const DECISION_CACHE = 50_000;

export class UserRules {
  readonly file: string;
  /** Called after every change is saved (the primary process tells its workers to reload). */
  onChange: (() => void) | null = null;
  private entries: UserEntry[] = [];
  private readonly exact = new Map<string, UserEntry[]>();
  private readonly tree = new Map<string, UserEntry[]>();
  private readonly cache = new Map<string, BlockDecision | null>();

  private constructor(
    file: string,
    private readonly catalog: VendorCatalog | null,
  ) {
    this.file = file;
  }

  /** Reads DATA_DIR/user-rules.json (absent: no entries). A damaged file is an error naming it. */
  static load(dataDir: string, catalog: VendorCatalog | null = null): UserRules {
    const rules = new UserRules(join(dataDir, USER_RULES_FILE), catalog);
    if (!existsSync(rules.file)) return rules;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(rules.file, 'utf8'));
    } catch (err) {
      throw new UserRuleError(`${rules.file}: ${(err as Error).message}; fix or remove the file`);
    }
    const list = (parsed as { entries?: unknown }).entries;
    if (!Array.isArray(list)) throw new UserRuleError(`${rules.file}: expected {"entries": [...]}`);
    for (const [i, e] of list.entries()) {
      const entry = e as Partial<UserEntry>;
      if ((entry.action !== 'allow' && entry.action !== 'deny') || typeof entry.name !== 'string' || (entry.scope !== 'exact' && entry.scope !== 'subtree')) {
        throw new UserRuleError(`${rules.file}: entries[${i}] is not {action, name, scope}`);
      }
      rules.entries.push({ action: entry.action, name: entry.name, scope: entry.scope, addedAt: Number(entry.addedAt) || 0 });
    }
    rules.reindex();
    return rules;
  }

  get size(): number {
    return this.entries.length;
  }

  /** Reads the file again (a worker process, after the primary saved a change). */
  reload(): void {
    const fresh = UserRules.load(dirname(this.file), this.catalog);
    this.entries = fresh.entries;
    this.reindex();
  }

  list(): UserEntry[] {
    return this.entries.map((e) => ({ ...e }));
  }

  /**
   * Adds an entry (`name` for the name and its subdomains, `=name` for the name only) and saves.
   * An entry of the other action on the same name and scope is replaced: allowing what you denied
   * undoes the deny.
   */
  add(action: UserAction, input: string): UserEntry {
    const { name, scope } = parseEntry(input);
    this.entries = this.entries.filter((e) => !(e.name === name && e.scope === scope));
    const entry: UserEntry = { action, name, scope, addedAt: Date.now() };
    this.entries.push(entry);
    this.changed();
    return entry;
  }

  /** Removes the entry for `input` (either action); false when there was none. */
  remove(input: string): boolean {
    const { name, scope } = parseEntry(input);
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => !(e.name === name && e.scope === scope));
    if (this.entries.length === before) return false;
    this.changed();
    return true;
  }

  /** The user's decision for a name (lowercase, no trailing dot), or null when no entry covers it. Allow beats deny. */
  decide(name: string): BlockDecision | null {
    if (this.entries.length === 0) return null;
    const hit = this.cache.get(name);
    if (hit !== undefined) return hit;
    let allow: UserEntry | null = null;
    let deny: UserEntry | null = null;
    const consider = (list: UserEntry[] | undefined) => {
      if (!list) return;
      for (const e of list) {
        if (e.action === 'allow') allow ??= e;
        else deny ??= e;
      }
    };
    consider(this.exact.get(name));
    let i = 0;
    for (;;) {
      consider(this.tree.get(i === 0 ? name : name.slice(i)));
      const dot = name.indexOf('.', i);
      if (dot === -1) break;
      i = dot + 1;
    }
    const winner = allow ?? deny;
    const d = winner ? this.decision(winner) : null;
    if (this.cache.size >= DECISION_CACHE) this.cache.clear();
    this.cache.set(name, d);
    return d;
  }

  private decision(e: UserEntry): BlockDecision {
    return {
      action: e.action === 'allow' ? 'allow' : 'block',
      ruleName: e.name,
      scope: e.scope,
      strong: true,
      vendor: this.catalog?.vendorOf(e.name)?.id ?? null,
      sources: [e.action === 'allow' ? USER_ALLOW_SOURCE : USER_DENY_SOURCE],
      reason: entryReason(e),
    };
  }

  private changed(): void {
    this.reindex();
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ version: 1, entries: this.entries }, null, 2)}\n`);
    renameSync(tmp, this.file);
    this.onChange?.();
  }

  private reindex(): void {
    this.exact.clear();
    this.tree.clear();
    this.cache.clear();
    for (const e of this.entries) {
      const m = e.scope === 'exact' ? this.exact : this.tree;
      const list = m.get(e.name);
      if (list) list.push(e);
      else m.set(e.name, [e]);
    }
  }
}

/** The reason an entry's answers carry (and the query log counts its hits by): `@@||name^ (user-allow)`. */
export function entryReason(e: Pick<UserEntry, 'action' | 'name' | 'scope'>): string {
  const source = e.action === 'allow' ? USER_ALLOW_SOURCE : USER_DENY_SOURCE;
  const rule = `${e.action === 'allow' ? '@@' : ''}${e.scope === 'subtree' ? `||${e.name}^` : e.name}`;
  return `${rule} (${source})`;
}

/** `name` (or `*.name`) → subtree, `=name` → exact (parseUserEntry); a bad entry is a UserRuleError. */
function parseEntry(input: string): { name: string; scope: EntryScope } {
  const e = parseUserEntry(input);
  if (!e.ok) throw new UserRuleError(`${JSON.stringify(input)} is not a name that can be allowed or denied (${e.reason}); expected e.g. tracking.example.com or =tracking.example.com`);
  return { name: e.name, scope: e.scope };
}

/** The user's entries first, then the compiled table. */
export function userFirst(rules: UserRules, table: Decider): Decider {
  return (name) => rules.decide(name) ?? table(name);
}

export interface PauseState {
  /** Epoch ms when blocking resumes for everyone; null when not paused. */
  everyone: number | null;
  clients: { client: string; until: number }[];
}

/**
 * An address as the listeners report a client: IPv4 dotted, IPv6 compressed and lowercase as the
 * socket layer prints it, an IPv4-mapped IPv6 address as its IPv4 (the IPv4 listener sees that
 * client as IPv4), a zone kept. Null when `v` is not an address.
 */
export function canonicalAddress(v: string): string | null {
  const zoneAt = v.indexOf('%');
  const base = zoneAt >= 0 ? v.slice(0, zoneAt) : v;
  if (isIPv4(base)) return zoneAt >= 0 ? null : base;
  if (!isIPv6(base) || (zoneAt >= 0 && !/^%[\w.-]{1,32}$/.test(v.slice(zoneAt)))) return null;
  const canon = new SocketAddress({ address: base, family: 'ipv6' }).address;
  if (canon.startsWith('::ffff:') && isIPv4(canon.slice(7))) return canon.slice(7);
  return zoneAt >= 0 ? canon + v.slice(zoneAt) : canon;
}

/** Pauses of blocking that end by themselves. */
export class Pause {
  /** Called after every set() (the primary process passes the state on to its workers). */
  onChange: ((state: PauseState) => void) | null = null;
  private everyoneUntil = 0;
  private readonly clients = new Map<string, number>();

  /** Takes over a state set elsewhere (a worker process, from the primary). */
  apply(state: PauseState): void {
    this.everyoneUntil = state.everyone ?? 0;
    this.clients.clear();
    for (const c of state.clients) this.clients.set(c.client, c.until);
  }

  /** `seconds` 0 ends a pause at once. The client is matched as the listeners report it (canonicalAddress). */
  set(seconds: number, client: string | null = null): PauseState {
    const address = client === null ? null : canonicalAddress(client);
    if (client !== null && address === null) throw new UserRuleError(`client ${JSON.stringify(client.slice(0, 100))} is not an IP address (e.g. 192.168.1.23 or 2001:db8::23)`, 'client');
    const until = seconds > 0 ? Date.now() + seconds * 1000 : 0;
    if (address === null) this.everyoneUntil = until;
    else if (until === 0) this.clients.delete(address);
    else this.clients.set(address, until);
    const state = this.state();
    this.onChange?.(state);
    return state;
  }

  /** Hot path: one comparison when nothing is paused. */
  isPaused(address: string): boolean {
    if (this.everyoneUntil === 0 && this.clients.size === 0) return false;
    const now = Date.now();
    if (this.everyoneUntil !== 0) {
      if (now < this.everyoneUntil) return true;
      this.everyoneUntil = 0;
    }
    const until = this.clients.get(address);
    if (until === undefined) return false;
    if (now < until) return true;
    this.clients.delete(address);
    return false;
  }

  state(): PauseState {
    const now = Date.now();
    if (this.everyoneUntil !== 0 && now >= this.everyoneUntil) this.everyoneUntil = 0;
    for (const [c, until] of this.clients) if (now >= until) this.clients.delete(c);
    return { everyone: this.everyoneUntil || null, clients: [...this.clients].map(([client, until]) => ({ client, until })) };
  }
}

/** Queries from a paused client (or while everyone is paused) skip the block stage, CNAME inspection included. */
export function pauseGate(pause: Pause, block: Stage): Stage {
  return (next) => {
    const blocking = block(next);
    return (query) => (pause.isPaused(query.client.address) ? next(query) : blocking(query));
  };
}
