// The HTTP side: health (for container checks and `hushdns health`) and the decision for a name.
// Small on purpose; errors are JSON with the field at fault and never carry a stack trace.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { BlocklistHandle } from '../blocklist.js';
import type { AnswerCache } from '../cache.js';
import type { ListRefresher } from '../refresh.js';
import type { Stats } from '../stats.js';
import type { UpstreamPool } from '../upstream/pool.js';

export interface HttpDeps {
  stats: Stats;
  blocklist: BlocklistHandle;
  pool: UpstreamPool;
  cache: AnswerCache;
  refresher: ListRefresher;
  version: string;
}

export interface HttpServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

type Route = (url: URL, req: IncomingMessage) => unknown;

export function routes(deps: HttpDeps): Record<string, Route> {
  return {
    '/api/health': () => {
      const bl = deps.blocklist.current();
      const info = bl?.info();
      const upstreams = deps.pool.health();
      const refresh = deps.refresher.status;
      const warnings: string[] = [];
      if (!bl) warnings.push('no blocklist loaded: answering without blocking');
      if (upstreams.every((u) => !u.up)) warnings.push('every upstream is failing');
      if (refresh.lastOk === false) warnings.push(`last list refresh failed: ${refresh.lastError}`);
      return {
        status: warnings.length === 0 ? 'ok' : 'degraded',
        version: deps.version,
        uptimeSeconds: Math.round((Date.now() - deps.stats.startedAt) / 1000),
        warnings,
        blocklist: info ? { path: info.path, rules: info.rules, patterns: info.patterns, builtAt: new Date(info.builtAt).toISOString(), ageSeconds: Math.round((Date.now() - info.builtAt) / 1000), bytes: info.bytes } : null,
        upstreams: upstreams.map((u) => ({ name: u.name, up: u.up, consecutiveFailures: u.consecutiveFailures })),
        refresh,
        queries: deps.stats.total,
        cache: { entries: deps.cache.size, bytes: deps.cache.byteSize },
      };
    },
    '/api/why': (url) => {
      const name = url.searchParams.get('name');
      if (!name) throw new HttpError(400, 'name is required, e.g. /api/why?name=tracking.example.com', 'name');
      if (name.length > 253) throw new HttpError(400, 'name is longer than 253 characters', 'name');
      const bl = deps.blocklist.current();
      if (!bl) throw new HttpError(503, 'no blocklist is loaded');
      return bl.explain(name.toLowerCase().replace(/\.$/, ''));
    },
  };
}

export function startHttp(host: string, port: number, deps: HttpDeps): Promise<HttpServer> {
  const table = routes(deps);
  const server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(text);
    };
    try {
      const url = new URL(req.url ?? '/', 'http://hushdns');
      const route = table[url.pathname];
      if (!route) throw new HttpError(404, `no such endpoint: ${url.pathname}`);
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `${req.method} is not allowed on ${url.pathname}`);
      send(200, route(url, req));
    } catch (err) {
      if (err instanceof HttpError) send(err.status, { error: err.message, ...(err.field ? { field: err.field } : {}) });
      else send(500, { error: 'internal error' });
    }
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on HTTP ${host}:${port}: ${err.code ?? err.message}; use --http-listen with a free port, e.g. 127.0.0.1:8081`)),
    );
    server.listen(port, host, () => {
      const a = server.address();
      const addr = a && typeof a === 'object' ? { host: a.address, port: a.port } : { host, port };
      resolve({
        address: addr,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}

export type { ServerResponse };
