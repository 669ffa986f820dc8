// The HTTP side: the JSON API (api.ts), Prometheus metrics (metrics.ts) and the dashboard
// (server/dashboard, static). Errors are JSON naming the field at fault and never carry a stack
// trace; request bodies are JSON, size-capped, and only read once the token has been checked.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { QueryLogOffError } from '../querylog/querylog.js';
import { UserRuleError } from '../user-rules.js';
import { apiRoutes, Reply, type Route } from './api.js';
import { bearerMatches, HostPolicy } from './auth.js';
import type { HttpDeps } from './deps.js';
import type { Registry } from 'prom-client';
import { HttpError } from './params.js';
import { DASHBOARD_CSP, loadDashboard } from './static.js';

export type { HttpDeps };

export interface HttpServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

export const MAX_BODY_BYTES = 16 * 1024;
/** Paths that answer whatever the Host header says: container health checks and Prometheus scrapes. */
const ANY_HOST = new Set(['/api/health', '/metrics']);

const BASE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

export function startHttp(host: string, port: number, deps: HttpDeps): Promise<HttpServer> {
  const routes = apiRoutes(deps);
  // prom-client costs about 13 MB resident: loaded on the first scrape, never on a box nobody scrapes.
  let metrics: Promise<Registry> | null = null;
  const assets = loadDashboard();
  const hosts = new HostPolicy(deps.hosts, deps.localDomain);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://hushdns');
    const path = url.pathname;
    if (!ANY_HOST.has(path) && !hosts.allows(req.headers.host)) {
      throw new HttpError(403, `this server is not reached by the name ${JSON.stringify(String(req.headers.host).slice(0, 100))}; open it by its IP address or a LAN name, or add the name to http-hosts in the config file`, 'host');
    }
    const method = req.method ?? 'GET';
    const isGet = method === 'GET' || method === 'HEAD';

    if (path === '/metrics') {
      if (!isGet) throw methodNotAllowed(method, path, 'GET');
      // A failed load is not kept: the next scrape tries again.
      metrics ??= import('./metrics.js')
        .then((m) => m.createMetrics(deps))
        .catch((err: unknown) => {
          metrics = null;
          throw err;
        });
      const registry = await metrics;
      const text = await registry.metrics();
      res.writeHead(200, { ...BASE_HEADERS, 'content-type': registry.contentType });
      res.end(method === 'HEAD' ? undefined : text);
      return;
    }
    const asset = assets.get(path);
    if (asset) {
      if (!isGet) throw methodNotAllowed(method, path, 'GET');
      res.writeHead(200, { ...BASE_HEADERS, 'content-type': asset.type, 'content-security-policy': DASHBOARD_CSP });
      res.end(method === 'HEAD' ? undefined : asset.body);
      return;
    }
    const route: Route | undefined = routes[path];
    if (!route) {
      if (path === '/') throw new HttpError(404, 'the dashboard files (server/dashboard) are missing from this installation');
      throw new HttpError(404, `no such endpoint: ${path}`);
    }
    if (route.method === 'GET' ? !isGet : method !== 'POST') throw methodNotAllowed(method, path, route.method);

    let body: Record<string, unknown> | null = null;
    if (route.change) {
      if (deps.apiToken === null) throw new HttpError(403, 'changes through the API are turned off (api-token is off, or no token could be saved in the data folder)');
      if (!bearerMatches(req.headers.authorization, deps.apiToken)) {
        res.setHeader('www-authenticate', 'Bearer realm="hushdns"');
        throw new HttpError(401, 'this change needs the API token as "Authorization: Bearer <token>" (see api-token; by default it is in DATA_DIR/api-token)', 'authorization');
      }
      body = await readJsonBody(req);
    }
    const result = await route.handle({ url, req, body });
    if (result instanceof Reply) send(res, result.status, result.body, method);
    else send(res, 200, result, method);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) {
        if (err.status === 405 && err.field) res.setHeader('allow', err.field);
        send(res, err.status, { error: err.message, ...(err.field && err.status !== 405 ? { field: err.field } : {}) });
      } else if (err instanceof QueryLogOffError) {
        send(res, 503, { error: err.message });
      } else if (err instanceof UserRuleError) {
        send(res, 400, { error: err.message, field: err.field });
      } else {
        deps.log.error('HTTP request failed', { path: req.url?.slice(0, 200), err });
        send(res, 500, { error: 'internal error' });
      }
    });
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

function send(res: ServerResponse, status: number, body: unknown, method = 'GET'): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...BASE_HEADERS, 'content-type': 'application/json; charset=utf-8' });
  res.end(method === 'HEAD' ? undefined : text);
}

function methodNotAllowed(method: string, path: string, allowed: string): HttpError {
  return new HttpError(405, `${method} is not allowed on ${path}; use ${allowed}`, allowed === 'GET' ? 'GET, HEAD' : allowed);
}

/** A JSON object body of at most MAX_BODY_BYTES; an empty body is {}. */
async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) {
    req.resume();
    throw new HttpError(413, `the request body is larger than ${MAX_BODY_BYTES} bytes`, 'body');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      req.resume();
      throw new HttpError(413, `the request body is larger than ${MAX_BODY_BYTES} bytes`, 'body');
    }
    chunks.push(chunk);
  }
  if (size === 0) return {};
  if (type !== 'application/json') throw new HttpError(415, 'send the body as JSON with "Content-Type: application/json"', 'content-type');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the body is not valid JSON', 'body');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HttpError(400, 'the body must be a JSON object', 'body');
  return parsed as Record<string, unknown>;
}

export type { ServerResponse };
