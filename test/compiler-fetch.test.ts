import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchAll, fetchSource } from '../compiler/fetch.js';
import type { FetchOptions } from '../compiler/fetch.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const LIST = '# example list\n0.0.0.0 ads.example.org\n0.0.0.0 tracker.example.net\n';
const LIST_V2 = '# example list, second edition\n0.0.0.0 ads.example.org\n0.0.0.0 metrics.example.com\n';
const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** A loopback server whose behaviour each test sets; it records every request it sees. */
let server: Server;
let base = '';
let handler: Handler = (_req, res) => res.end();
let seen: IncomingMessage[] = [];
let inFlight = 0;
let maxInFlight = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let counted = true;
    const done = (): void => {
      if (counted) inFlight--;
      counted = false;
    };
    res.on('close', done);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let cacheDir = '';
let opts: FetchOptions;

beforeEach(() => {
  cacheDir = join(mkdtempSync(join(tmpdir(), 'hushdns-fetch-')), 'cache');
  opts = { cacheDir, timeoutMs: 2_000, retries: 2, retryBaseMs: 5 };
  seen = [];
  inFlight = 0;
  maxInFlight = 0;
  handler = (_req, res) => res.end();
});

afterEach(() => {
  // Whatever happened, no attempt leaves a temp file behind.
  let names: string[] = [];
  try {
    names = readdirSync(cacheDir);
  } catch {
    // the test never created the cache dir
  }
  server.closeAllConnections();
  rmSync(join(cacheDir, '..'), { recursive: true, force: true });
  expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([]);
});

const serve = (body: string | Buffer, headers: Record<string, string> = {}): Handler => (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(body);
};

/** Serves LIST with validators and answers a matching conditional request with 304. */
const conditional = (etag: string, lastModified: string, body = LIST): Handler => (req, res) => {
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, { etag, 'last-modified': lastModified });
    res.end();
    return;
  }
  serve(body, { etag, 'last-modified': lastModified })(req, res);
};

/** Fetch LIST once so the cache holds a good copy. */
async function primeCache(id: string, path = '/list.txt'): Promise<void> {
  handler = serve(LIST, { etag: '"v1"' });
  const first = await fetchSource(id, base + path, opts);
  expect(first.status).toBe('fresh');
  seen = [];
}

describe('fetchSource over http', () => {
  it('downloads a list and records etag, last-modified and sha256 in the sidecar', async () => {
    const lastModified = 'Tue, 01 Jul 2025 10:00:00 GMT';
    handler = conditional('"v1"', lastModified);
    const before = Date.now();
    const r = await fetchSource('example', `${base}/hosts.txt`, opts);

    expect(r).toMatchObject({ id: 'example', status: 'fresh', etag: '"v1"', lastModified, sha256: sha256(LIST), bytes: LIST.length });
    expect(r.error).toBeUndefined();
    expect(r.fetchedAt).toBeGreaterThanOrEqual(before);
    expect(readFileSync(r.path!, 'utf8')).toBe(LIST);
    const sidecar = JSON.parse(readFileSync(join(cacheDir, 'example.json'), 'utf8'));
    expect(sidecar).toMatchObject({ id: 'example', url: `${base}/hosts.txt`, etag: '"v1"', lastModified, sha256: sha256(LIST), bytes: LIST.length });
    expect(seen[0]!.headers['user-agent']).toMatch(/^hushdns\//);
    expect(seen[0]!.headers['accept-encoding']).toContain('gzip');
  });

  it('sends If-None-Match on the second fetch and keeps the cached body on 304', async () => {
    const lastModified = 'Tue, 01 Jul 2025 10:00:00 GMT';
    let bodiesSent = 0;
    handler = (req, res) => {
      if (req.headers['if-none-match'] !== '"v1"') bodiesSent++;
      conditional('"v1"', lastModified)(req, res);
    };
    const first = await fetchSource('example', `${base}/hosts.txt`, opts);
    const inode = statSync(first.path!).ino;

    const second = await fetchSource('example', `${base}/hosts.txt`, opts);
    expect(seen).toHaveLength(2);
    expect(seen[1]!.headers['if-none-match']).toBe('"v1"');
    expect(seen[1]!.headers['if-modified-since']).toBe(lastModified);
    expect(bodiesSent).toBe(1);
    expect(second).toMatchObject({ status: 'not-modified', path: first.path, sha256: first.sha256, fetchedAt: first.fetchedAt, etag: '"v1"' });
    // Same file, not a re-download renamed over it.
    expect(statSync(second.path!).ino).toBe(inode);
    expect(readFileSync(second.path!, 'utf8')).toBe(LIST);
  });

  it('replaces the cached copy when the list changed', async () => {
    await primeCache('example');
    handler = serve(LIST_V2, { etag: '"v2"' });
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(seen[0]!.headers['if-none-match']).toBe('"v1"');
    expect(r).toMatchObject({ status: 'fresh', etag: '"v2"', sha256: sha256(LIST_V2) });
    expect(readFileSync(r.path!, 'utf8')).toBe(LIST_V2);
  });

  it('sends no conditional headers when the source URL changed', async () => {
    await primeCache('example', '/old.txt');
    handler = serve(LIST_V2);
    const r = await fetchSource('example', `${base}/new.txt`, opts);
    expect(seen[0]!.headers['if-none-match']).toBeUndefined();
    expect(r.status).toBe('fresh');
  });

  it('falls back to the previous copy when the server answers 500', async () => {
    await primeCache('example');
    handler = (_req, res) => {
      res.writeHead(500);
      res.end('oops');
    };
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(r).toMatchObject({ status: 'stale', errorCode: 'http', sha256: sha256(LIST), etag: '"v1"' });
    expect(r.error).toContain(`${base}/list.txt`);
    expect(r.error).toContain('HTTP 500');
    expect(readFileSync(r.path!, 'utf8')).toBe(LIST);
    expect(seen).toHaveLength(3); // first attempt + 2 retries
  });

  it('reports failed with no path when the server answers 500 and nothing is cached', async () => {
    handler = (_req, res) => {
      res.writeHead(500);
      res.end();
    };
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, retries: 0 });
    expect(r).toMatchObject({ status: 'failed', path: null, errorCode: 'http' });
    expect(seen).toHaveLength(1);
  });

  it('retries 500 and 503 and then succeeds', async () => {
    const statuses = [500, 503];
    handler = (req, res) => {
      const status = statuses.shift();
      if (status) {
        res.writeHead(status);
        res.end();
      } else serve(LIST)(req, res);
    };
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(r.status).toBe('fresh');
    expect(seen).toHaveLength(3);
  });

  it('waits for Retry-After on 429 before trying again', async () => {
    const times: number[] = [];
    handler = (req, res) => {
      times.push(Date.now());
      if (times.length === 1) {
        res.writeHead(429, { 'retry-after': '1' });
        res.end();
      } else serve(LIST)(req, res);
    };
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(r.status).toBe('fresh');
    expect(times).toHaveLength(2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950);
  });

  it('does not wait when Retry-After is beyond the cap', async () => {
    handler = (_req, res) => {
      res.writeHead(429, { 'retry-after': '120' });
      res.end();
    };
    const started = Date.now();
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, retryAfterCapMs: 1_000 });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(r).toMatchObject({ status: 'failed', errorCode: 'http' });
    expect(r.error).toContain('HTTP 429');
    expect(r.error).toContain('cap');
    expect(seen).toHaveLength(1);
  });

  it('does not retry a 404', async () => {
    handler = (_req, res) => {
      res.writeHead(404);
      res.end('not here');
    };
    const r = await fetchSource('example', `${base}/missing.txt`, opts);
    expect(r).toMatchObject({ status: 'failed', errorCode: 'http' });
    expect(r.error).toContain('HTTP 404 Not Found');
    expect(seen).toHaveLength(1);
  });

  it('retries a 408', async () => {
    handler = (req, res) => {
      if (seen.length === 1) {
        res.writeHead(408);
        res.end();
      } else serve(LIST)(req, res);
    };
    expect((await fetchSource('example', `${base}/list.txt`, opts)).status).toBe('fresh');
    expect(seen).toHaveLength(2);
  });

  it('gives up at the deadline when the server never answers, with no retry past it', async () => {
    handler = () => {}; // hold the request open forever
    const started = Date.now();
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, timeoutMs: 300, retries: 3 });
    const elapsed = Date.now() - started;
    expect(r).toMatchObject({ status: 'failed', path: null, errorCode: 'timeout' });
    expect(r.error).toContain(`${base}/list.txt`);
    expect(r.error).toMatch(/no complete copy within the 0\.3 s deadline/);
    expect(seen).toHaveLength(1);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(1_500);
  });

  it('counts retries and their backoff against the one deadline of the list', async () => {
    handler = (_req, res) => {
      setTimeout(() => res.writeHead(503).end('busy'), 100);
    };
    const started = Date.now();
    // Per attempt this would be 11 tries and seconds of backoff; the deadline stops it at ~0.6 s.
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, timeoutMs: 600, retries: 10, retryBaseMs: 100 });
    const elapsed = Date.now() - started;
    // The last attempt either got its 503 with no time left to retry, or was cut off by the deadline.
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/(HTTP 503.*no time left for another attempt within|no complete copy within) the 0\.6 s deadline/);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.length).toBeLessThan(6);
    expect(elapsed).toBeLessThan(1_500);
  });

  it('with deferCommit, leaves a fresh body out of the cache until it is accepted', async () => {
    await primeCache('example');
    handler = serve(LIST_V2, { etag: '"v2"' });
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, deferCommit: true });
    expect(r.status).toBe('fresh');
    expect(r.path).toMatch(/\.tmp$/);
    expect(readFileSync(r.path!, 'utf8')).toBe(LIST_V2);
    expect(readFileSync(join(cacheDir, 'example.txt'), 'utf8')).toBe(LIST);
    await r.pending!.accept();
    expect(r.pending).toBeUndefined();
    expect(r.path).toBe(join(cacheDir, 'example.txt'));
    expect(readFileSync(r.path!, 'utf8')).toBe(LIST_V2);
    expect(JSON.parse(readFileSync(join(cacheDir, 'example.json'), 'utf8'))).toMatchObject({ etag: '"v2"', sha256: sha256(LIST_V2) });
  });

  it('with deferCommit, a rejected body is deleted and the last good copy comes back as stale', async () => {
    await primeCache('example');
    handler = serve('Service temporarily unavailable\n');
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, deferCommit: true });
    const stale = await r.pending!.reject('the new copy holds no valid hosts entries');
    expect(stale).toMatchObject({ status: 'stale', errorCode: 'unusable', sha256: sha256(LIST), path: join(cacheDir, 'example.txt') });
    expect(stale.error).toBe(`${base}/list.txt: the new copy holds no valid hosts entries`);
    expect(readFileSync(stale.path!, 'utf8')).toBe(LIST);
    await expect(r.pending?.accept() ?? Promise.reject(new Error('settled'))).rejects.toThrow();
    // Next time the old validators are still the ones sent.
    handler = conditional('"v1"', 'Mon, 01 Jan 2024 00:00:00 GMT');
    expect((await fetchSource('example', `${base}/list.txt`, opts)).status).toBe('not-modified');
  });

  it('keeps the old copy when the body stalls halfway until the deadline', async () => {
    await primeCache('example');
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('0.0.0.0 partial.example.org\n'); // and never end
    };
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, timeoutMs: 200, retries: 0 });
    expect(r).toMatchObject({ status: 'stale', errorCode: 'timeout', sha256: sha256(LIST) });
    expect(readFileSync(r.path!, 'utf8')).toBe(LIST);
  });

  it('aborts a body over maxBytes and keeps the old copy intact', async () => {
    await primeCache('example');
    const big = '0.0.0.0 big.example.org\n'.repeat(1_000);
    handler = serve(big);
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, maxBytes: 1_000 });
    expect(r).toMatchObject({ status: 'stale', errorCode: 'too-large', sha256: sha256(LIST) });
    expect(r.error).toContain('body larger than 1000 bytes');
    expect(r.error).toContain(`${base}/list.txt`);
    expect(readFileSync(r.path!, 'utf8')).toBe(LIST);
    expect(seen).toHaveLength(1); // oversize is not transient
  });

  it('applies maxBytes to the decoded size, so a small gzip bomb is stopped', async () => {
    const bomb = gzipSync(Buffer.alloc(4 * 1024 * 1024, 'a'));
    expect(bomb.length).toBeLessThan(10_000);
    handler = serve(bomb, { 'content-encoding': 'gzip' });
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, maxBytes: 100_000 });
    expect(r).toMatchObject({ status: 'failed', errorCode: 'too-large' });
  });

  it('accepts a body of exactly maxBytes', async () => {
    handler = serve(LIST);
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, maxBytes: LIST.length });
    expect(r.status).toBe('fresh');
  });

  it('rejects an HTML page served as text/plain', async () => {
    await primeCache('example');
    handler = serve('\n\n<!DOCTYPE html>\n<html><head><title>Sign in to Example Wi-Fi</title></head><body></body></html>');
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(r).toMatchObject({ status: 'stale', errorCode: 'html', sha256: sha256(LIST) });
    expect(r.error).toContain('HTML');
    expect(readFileSync(r.path!, 'utf8')).toBe(LIST);
    expect(seen).toHaveLength(1);
  });

  it('rejects a response whose content-type is text/html', async () => {
    handler = serve(LIST, { 'content-type': 'text/html; charset=utf-8' });
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(r).toMatchObject({ status: 'failed', errorCode: 'html' });
    expect(r.error).toContain('text/html');
  });

  it('rejects binary data with NUL bytes', async () => {
    const binary = Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(16), randomBytes(2_000)]);
    handler = serve(binary, { 'content-type': 'application/octet-stream' });
    const r = await fetchSource('example', `${base}/list.zip`, opts);
    expect(r).toMatchObject({ status: 'failed', errorCode: 'binary' });
    expect(r.error).toContain('NUL');
  });

  it('rejects binary data made mostly of control bytes', async () => {
    const controls = Buffer.alloc(2_000);
    for (let i = 0; i < controls.length; i++) controls[i] = i % 3 === 0 ? 0x41 : 1 + (i % 8);
    handler = serve(controls);
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(r).toMatchObject({ status: 'failed', errorCode: 'binary' });
  });

  it('rejects an empty body', async () => {
    handler = serve('');
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(r).toMatchObject({ status: 'failed', errorCode: 'empty' });
    expect(r.error).toContain('empty body');
  });

  it('accepts UTF-8 and Latin-1 text', async () => {
    const text = Buffer.concat([Buffer.from('# Liste für Geräte – ünïcødé\nxn--bcher-kva.example\n'), Buffer.from([0x23, 0xe9, 0x0a])]);
    handler = serve(text);
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(r.status).toBe('fresh');
    expect(readFileSync(r.path!)).toEqual(text);
  });

  it.each([
    ['gzip', gzipSync],
    ['br', brotliCompressSync],
    ['deflate', deflateSync],
    ['deflate', deflateRawSync],
  ] as const)('decodes a %s-encoded body', async (encoding, encode) => {
    const body = LIST.repeat(200);
    handler = serve(encode(Buffer.from(body)), { 'content-encoding': encoding });
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(r).toMatchObject({ status: 'fresh', sha256: sha256(body), bytes: body.length });
    expect(readFileSync(r.path!, 'utf8')).toBe(body);
  });

  it('gunzips a .gz file served without content-encoding', async () => {
    handler = serve(gzipSync(Buffer.from(LIST)), { 'content-type': 'application/gzip' });
    const r = await fetchSource('example', `${base}/list.txt.gz`, opts);
    expect(r).toMatchObject({ status: 'fresh', sha256: sha256(LIST) });
    expect(readFileSync(r.path!, 'utf8')).toBe(LIST);
  });

  it('reports a corrupt gzip body without retrying', async () => {
    handler = serve(Buffer.from('this is not gzip at all'), { 'content-encoding': 'gzip' });
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(r).toMatchObject({ status: 'failed', errorCode: 'encoding' });
    expect(r.error).toContain(`${base}/list.txt`);
    expect(seen).toHaveLength(1);
  });

  it('rejects an unsupported content-encoding', async () => {
    handler = serve(LIST, { 'content-encoding': 'compress' });
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(r).toMatchObject({ status: 'failed', errorCode: 'encoding' });
    expect(r.error).toContain('compress');
  });

  it('keeps the old copy when the connection is reset mid-body', async () => {
    await primeCache('example');
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }); // chunked: the cut is detectable
      res.write('0.0.0.0 partial.example.org\n'.repeat(100));
      setTimeout(() => res.socket?.destroy(), 20);
    };
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, retries: 1 });
    expect(r).toMatchObject({ status: 'stale', errorCode: 'network', sha256: sha256(LIST) });
    expect(r.error).toContain(`${base}/list.txt`);
    expect(readFileSync(r.path!, 'utf8')).toBe(LIST);
    expect(seen).toHaveLength(2); // a reset is transient
  });

  it('treats a body shorter than its content-length as a failed attempt', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5000' });
      res.write(LIST);
      setTimeout(() => res.socket?.destroy(), 20);
    };
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, retries: 0 });
    expect(r).toMatchObject({ status: 'failed', errorCode: 'network' });
  });

  it('succeeds on the retry after a reset', async () => {
    handler = (req, res) => {
      if (seen.length === 1) {
        req.socket.destroy();
        return;
      }
      serve(LIST)(req, res);
    };
    const r = await fetchSource('example', `${base}/list.txt`, opts);
    expect(r.status).toBe('fresh');
    expect(seen).toHaveLength(2);
  });

  it('follows redirects', async () => {
    handler = (req, res) => {
      if (req.url === '/moved') {
        res.writeHead(301, { location: '/list.txt' });
        res.end();
      } else serve(LIST)(req, res);
    };
    const r = await fetchSource('example', `${base}/moved`, opts);
    expect(r).toMatchObject({ status: 'fresh', sha256: sha256(LIST) });
    expect(seen.map((q) => q.url)).toEqual(['/moved', '/list.txt']);
  });

  it('reports a refused connection with the URL', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/list.txt`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await fetchSource('example', url, { ...opts, retries: 0 });
    expect(r).toMatchObject({ status: 'failed', errorCode: 'network' });
    expect(r.error).toContain(url);
    expect(r.error).toContain('ECONNREFUSED');
  });

  it('rejects schemes other than http and https without a request', async () => {
    for (const url of ['ftp://lists.example.org/hosts.txt', 'file:///etc/hosts', 'not a url']) {
      const r = await fetchSource('example', url, opts);
      expect(r).toMatchObject({ status: 'failed', path: null, errorCode: 'bad-url' });
      expect(r.error).toContain(url);
    }
    expect(seen).toHaveLength(0);
  });

  it('refuses a source id that cannot name a cache file', async () => {
    for (const id of ['../escape', '.hidden', 'has space', '']) {
      const r = await fetchSource(id, `${base}/list.txt`, opts);
      expect(r).toMatchObject({ status: 'failed', errorCode: 'bad-id' });
    }
    expect(seen).toHaveLength(0);
  });

  it('uses a cached body whose sidecar is missing as a stale copy', async () => {
    await primeCache('example');
    rmSync(join(cacheDir, 'example.json'));
    handler = (_req, res) => {
      res.writeHead(503);
      res.end();
    };
    const r = await fetchSource('example', `${base}/list.txt`, { ...opts, retries: 0 });
    expect(seen[0]!.headers['if-none-match']).toBeUndefined();
    expect(r).toMatchObject({ status: 'stale', bytes: LIST.length });
    expect(readFileSync(r.path!, 'utf8')).toBe(LIST);
  });

  it('does not serve a cached copy that came from a different URL', async () => {
    await primeCache('example', '/old.txt');
    handler = (_req, res) => {
      res.writeHead(404);
      res.end();
    };
    const r = await fetchSource('example', `${base}/new.txt`, opts);
    expect(r).toMatchObject({ status: 'failed', path: null });
    expect(r.error).toContain('/old.txt');
  });
});

describe('fetchAll', () => {
  it('never has more requests in flight than its concurrency bound', async () => {
    handler = (req, res) => setTimeout(() => serve(`0.0.0.0 ${req.url!.slice(1)}.example.org\n`)(req, res), 40);
    const sources = Array.from({ length: 10 }, (_, i) => ({ id: `list-${i}`, url: `${base}/n${i}` }));
    const progress: string[] = [];
    const results = await fetchAll(sources, { ...opts, concurrency: 3 }, (r) => progress.push(r.id));

    expect(maxInFlight).toBe(3);
    expect(seen).toHaveLength(10);
    expect(results.map((r) => r.id)).toEqual(sources.map((s) => s.id));
    expect(results.every((r) => r.status === 'fresh')).toBe(true);
    expect(readFileSync(results[7]!.path!, 'utf8')).toBe('0.0.0.0 n7.example.org\n');
    expect(progress.slice().sort()).toEqual(sources.map((s) => s.id).sort());
  });

  it('defaults to four requests in flight', async () => {
    handler = (req, res) => setTimeout(() => serve(LIST)(req, res), 40);
    const sources = Array.from({ length: 9 }, (_, i) => ({ id: `list-${i}`, url: `${base}/n${i}` }));
    await fetchAll(sources, opts);
    expect(maxInFlight).toBe(4);
  });

  it('reports each source on its own: one failure does not stop the others', async () => {
    handler = (req, res) => {
      if (req.url === '/broken') {
        res.writeHead(404);
        res.end();
      } else serve(LIST)(req, res);
    };
    const results = await fetchAll(
      [
        { id: 'good', url: `${base}/good` },
        { id: 'broken', url: `${base}/broken` },
        { id: 'local', url: 'file:///etc/hosts' },
        { id: 'good', url: `${base}/again` },
      ],
      opts,
    );
    expect(results.map((r) => r.status)).toEqual(['fresh', 'failed', 'failed', 'failed']);
    expect(results[3]!.error).toContain('twice');
  });

  it('sweeps temp files a crashed run left behind', async () => {
    await primeCache('example');
    const leftover = join(cacheDir, 'example.txt.1234-abcdef.tmp');
    writeFileSync(leftover, 'half a list');
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    const { utimesSync } = await import('node:fs');
    utimesSync(leftover, old, old);
    handler = serve(LIST);
    await fetchAll([{ id: 'example', url: `${base}/list.txt` }], opts);
    expect(readdirSync(cacheDir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
