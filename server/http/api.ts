// The JSON API: what the dashboard and scripts read (summary, devices, top, querylog, why, lists,
// health) and the few changes a user makes (allow, deny, pause, refresh lists), which need the
// API token. Handlers validate their input with params.ts and answer plain objects; server.ts does
// the HTTP around them.
import type { IncomingMessage } from 'node:http';
import { typeName, rcodeName } from '../querylog/codes.js';
import type { DeviceCounts, HitCounts, LogRow, TopKind, VendorCount } from '../querylog/types.js';
import { canonicalAddress, entryReason, USER_ALLOW_SOURCE, USER_DENY_SOURCE, type UserAction } from '../user-rules.js';
import type { HttpDeps } from './deps.js';
import { bodyBool, bodyInt, bodyString, HttpError, oneOf, parseCursor, parseIntParam, parseOutcomes, parseText, parseWindow } from './params.js';
import { heapMode } from '../heap-mode.js';

export interface RouteContext {
  url: URL;
  req: IncomingMessage;
  /** The JSON body of a POST (an object), null for GET. */
  body: Record<string, unknown> | null;
}

export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

export interface Route {
  method: 'GET' | 'POST';
  /** Needs the API token. */
  change?: boolean;
  handle(ctx: RouteContext): unknown;
}

const TOP_KINDS: readonly TopKind[] = ['blocked', 'queried', 'clients', 'vendors', 'lists', 'rules'];
const MAX_PAUSE_SECONDS = 7 * 86_400;
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function apiRoutes(deps: HttpDeps): Record<string, Route> {
  const vendorView = (v: VendorCount) => {
    const info = deps.catalog.byId(v.vendor);
    return { vendor: v.vendor, name: info?.name ?? v.vendor, kind: info?.kind ?? null, blocked: v.blocked, allowed: v.allowed, byOutcome: v.byOutcome };
  };
  const deviceView = (d: DeviceCounts) => {
    const who = deps.devices.identify(d.client);
    const kind = deps.devices.kindOf(d.vendors);
    return {
      client: d.client,
      name: who.name,
      nameFrom: who.nameFrom,
      mac: who.mac,
      kind: kind?.kind ?? null,
      kindVendor: kind?.vendor ?? null,
      total: d.total,
      blocked: d.blocked,
      allowed: d.allowed,
      byOutcome: d.byOutcome,
      lastSeen: iso(d.lastSeen),
      vendors: d.vendors.map(vendorView),
    };
  };
  const rowView = (r: LogRow) => ({
    time: iso(r.time),
    client: r.client,
    device: deps.devices.identify(r.client).name,
    name: r.name,
    type: typeName(r.qtype),
    protocol: r.protocol,
    outcome: r.outcome,
    rcode: rcodeName(r.rcode),
    reason: r.reason,
    vendor: r.vendor,
    upstream: r.upstream,
    ms: Math.round(r.ms * 1000) / 1000,
  });
  const windowView = (w: { since: number; until: number }) => ({ since: iso(w.since), until: iso(w.until) });

  const userChange = (action: UserAction) => (ctx: RouteContext) => {
    const body = ctx.body!;
    const name = bodyString(body, 'name', { required: true, max: 300 })!;
    if (bodyBool(body, 'remove')) return { removed: deps.userRules.remove(name), entries: deps.userRules.list() };
    const entry = deps.userRules.add(action, name);
    deps.log.info(`user ${action} entry added`, { name: entry.name, scope: entry.scope });
    return { entry, entries: deps.userRules.list() };
  };

  return {
    '/api/summary': {
      method: 'GET',
      handle: async ({ url }) => {
        const w = parseWindow(url);
        const top = parseIntParam(url, 'top', 8, 1, 50);
        const s = await deps.querylog.read('summary', { ...w, topVendors: top });
        return {
          ...s,
          recentPerMinute: deps.querylog.recentPerMinute(),
          window: windowView(s.window),
          blockedShare: s.total > 0 ? Math.round((s.blocked / s.total) * 10_000) / 10_000 : 0,
          topVendors: s.topVendors.map(vendorView),
          series: s.series.map((p) => ({ hour: iso(p.hour), blocked: p.blocked, allowed: p.allowed })),
          paused: pauseView(deps),
          blocklistRules: deps.blocklist.current()?.info().rules ?? 0,
          querylog: deps.querylog.status(),
        };
      },
    },
    '/api/devices': {
      method: 'GET',
      handle: async ({ url }) => {
        const w = parseWindow(url);
        const devices = await deps.querylog.read('devices', w);
        return { window: windowView(w), devices: devices.map(deviceView) };
      },
    },
    '/api/top': {
      method: 'GET',
      handle: async ({ url }) => {
        const kind = url.searchParams.get('kind');
        if (!kind) throw new HttpError(400, `kind is required: one of ${TOP_KINDS.join(', ')}`, 'kind');
        const k = oneOf(url, 'kind', TOP_KINDS, 'blocked');
        const w = parseWindow(url);
        const limit = parseIntParam(url, 'limit', 20, 1, 500);
        const entries = await deps.querylog.read('top', { ...w, kind: k, limit });
        return {
          kind: k,
          window: windowView(w),
          entries: entries.map((e) => {
            if (k === 'clients') return { ...e, device: deps.devices.identify(e.key).name };
            if (k === 'vendors') return { ...e, name: deps.catalog.byId(e.key)?.name ?? e.key };
            return e;
          }),
        };
      },
    },
    '/api/querylog': {
      method: 'GET',
      handle: async ({ url }) => {
        const now = Date.now();
        const w = parseWindow(url, now, 366 * 86_400_000);
        const page = await deps.querylog.read('page', {
          ...w,
          limit: parseIntParam(url, 'limit', 100, 1, 1000),
          cursor: parseCursor(url),
          client: parseClient(url),
          name: parseText(url, 'name', 253)?.toLowerCase() ?? null,
          outcomes: parseOutcomes(url),
          vendor: parseText(url, 'vendor', 64),
        });
        return { rows: page.rows.map(rowView), next: page.next === null ? null : String(page.next), partial: page.partial };
      },
    },
    '/api/why': {
      method: 'GET',
      handle: ({ url }) => {
        const raw = parseText(url, 'name', 254);
        if (!raw) throw new HttpError(400, 'name is required, e.g. /api/why?name=tracking.example.com', 'name');
        const name = raw.toLowerCase().replace(/\.$/, '');
        if (name.length > 253) throw new HttpError(400, 'name is longer than 253 characters', 'name');
        const user = deps.userRules.decide(name);
        const table = deps.blocklist.current()?.explain(name) ?? null;
        if (!user && !table) throw new HttpError(503, 'no blocklist is loaded and no entry of yours covers this name');
        const decision = user ?? table!.decision;
        return {
          name,
          action: decision.action,
          reason: decision.reason,
          decidedBy: user ? 'user' : 'blocklist',
          decision,
          user: user ? deps.userRules.list().filter((e) => e.name === user.ruleName) : [],
          paused: pauseView(deps),
          table,
        };
      },
    },
    '/api/lists': {
      method: 'GET',
      handle: async ({ url }) => {
        const w = parseWindow(url);
        const hits = new Map<string, ReturnType<typeof hitsView>>();
        if (deps.querylog.active) for (const h of await deps.querylog.read('listHits', w)) hits.set(h.list, hitsView(h.total, h.window));
        const none = hitsView({ blocked: 0, allowed: 0 }, { blocked: 0, allowed: 0 });
        const info = deps.blocklist.current()?.info();
        // Each entry of yours with its own hits: allows it let through, blocks it made.
        const entries = deps.userRules.list();
        const reasons = entries.map(entryReason);
        const ruleHits = deps.querylog.active && entries.length > 0 ? await deps.querylog.read('ruleHits', { ...w, rules: reasons }) : [];
        const withHits = entries.map((e, i) => ({ ...e, hits: ruleHits[i] ? hitsView(ruleHits[i].total, ruleHits[i].window) : none }));
        return {
          window: windowView(w),
          sources: (info?.sources ?? []).map((s) => ({
            id: s.id,
            name: s.name,
            url: s.url,
            format: s.format,
            vendor: s.vendor,
            category: s.category,
            license: s.license,
            status: s.status,
            entries: s.entries,
            invalid: s.invalid,
            fetchedAt: s.fetchedAt === null ? null : iso(s.fetchedAt),
            error: s.error,
            hits: hits.get(s.name) ?? none,
          })),
          user: {
            allow: withHits.filter((e) => e.action === 'allow'),
            deny: withHits.filter((e) => e.action === 'deny'),
            hits: { allow: hits.get(USER_ALLOW_SOURCE) ?? none, deny: hits.get(USER_DENY_SOURCE) ?? none },
          },
          blocklist: info ? { rules: info.rules, patterns: info.patterns, builtAt: iso(info.builtAt) } : null,
          refresh: deps.refresher.status,
        };
      },
    },
    '/api/health': {
      method: 'GET',
      handle: () => {
        const bl = deps.blocklist.current();
        const info = bl?.info();
        const upstreams = deps.pool.health();
        const refresh = deps.refresher.status;
        const log = deps.querylog.status();
        const warnings: string[] = [];
        if (!bl) warnings.push('no blocklist loaded: answering without blocking');
        if (upstreams.length > 0 && upstreams.every((u) => !u.up)) warnings.push('every upstream is failing');
        const workers = deps.workers?.() ?? null;
        if (workers && workers.running < workers.configured) warnings.push(`DNS workers: ${workers.running} of ${workers.configured} running`);
        if (refresh.lastOk === false) warnings.push(`last list refresh failed: ${refresh.lastError}`);
        if (log.mode === 'failed') warnings.push(`query log unavailable: ${log.lastError}`);
        else if (log.failing) warnings.push(`query log cannot write: ${log.lastError}`);
        if (log.overCap) warnings.push('query log: querylog-max-size is smaller than one hour of queries; only the newest hour is kept');
        return {
          status: warnings.length === 0 ? 'ok' : 'degraded',
          version: deps.version,
          uptimeSeconds: Math.round((Date.now() - deps.stats.startedAt) / 1000),
          warnings,
          blocklist: info ? { path: info.path, rules: info.rules, patterns: info.patterns, builtAt: iso(info.builtAt), ageSeconds: Math.round((Date.now() - info.builtAt) / 1000), bytes: info.bytes } : null,
          upstreams: upstreams.map((u) => ({ name: u.name, up: u.up, consecutiveFailures: u.consecutiveFailures })),
          refresh,
          queries: deps.stats.total,
          cache: { entries: deps.cache.size, bytes: deps.cache.byteSize },
          querylog: log,
          paused: pauseView(deps),
          memory: { mode: heapMode(), rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed },
          ...(workers ? { workers } : {}),
        };
      },
    },
    '/api/allow': { method: 'POST', change: true, handle: userChange('allow') },
    '/api/deny': { method: 'POST', change: true, handle: userChange('deny') },
    '/api/pause': {
      method: 'POST',
      change: true,
      handle: ({ body }) => {
        const seconds = bodyInt(body!, 'seconds', { required: true, min: 0, max: MAX_PAUSE_SECONDS });
        const raw = bodyString(body!, 'client', { required: false, max: 64 });
        // Pause.set checks the address and keys it as the listeners see the client (::ffff:192.168.1.23 is 192.168.1.23).
        deps.pause.set(seconds, raw === null ? null : raw.trim());
        deps.log.info(seconds > 0 ? 'blocking paused' : 'blocking resumed', { seconds, client: raw === null ? 'everyone' : canonicalAddress(raw.trim()) });
        return { paused: pauseView(deps) };
      },
    },
    '/api/lists/refresh': {
      method: 'POST',
      change: true,
      handle: () => {
        if (deps.refresher.status.running) return new Reply(409, { error: 'a list refresh is already running', refresh: deps.refresher.status });
        void deps.refresher.run({ offline: false });
        return new Reply(202, { started: true, refresh: deps.refresher.status });
      },
    },
  };
}

/** Hits of a list or rule: `total` and `window` count blocks and allows together, then each apart. */
function hitsView(total: HitCounts, window: HitCounts) {
  return { total: total.blocked + total.allowed, window: window.blocked + window.allowed, blocked: { total: total.blocked, window: window.blocked }, allowed: { total: total.allowed, window: window.allowed } };
}

/** The querylog's client filter: an address in its canonical form, else as given (an anonymised client). */
function parseClient(url: URL): string | null {
  const v = parseText(url, 'client', 100);
  return v === null ? null : (canonicalAddress(v) ?? v);
}

function pauseView(deps: HttpDeps) {
  const p = deps.pause.state();
  return { everyone: iso(p.everyone), clients: p.clients.map((c) => ({ client: c.client, until: iso(c.until) })) };
}
