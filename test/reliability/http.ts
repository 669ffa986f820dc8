// The HTTP side under abuse, over raw sockets so every byte of the request line is ours (an HTTP
// client library would normalise the paths we mean to send): path traversal on the static files,
// bodies that are too large or lie about their size, wrong tokens on every changing endpoint,
// malformed requests; never a file outside the dashboard, never a change, never a stack trace.
// test/http-api.test.ts checks the API's own validation; these are the attacks around it.
import { connect } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { apiRoutes } from '../../server/http/api.js';
import type { HttpDeps } from '../../server/http/deps.js';
import { addressesOf, makeQuery, udpExchange } from '../helpers/dns-client.js';
import { Attack, exited } from './attack.js';
import { serverFixture } from './fixture.js';
import { VALID_ANSWER, VALID_NAME } from './udp-exchanger.js';

const TOKEN = 'reliability-token-0123456789';
const STACK_TRACE = /\n\s+at |\.(ts|js):\d+|node:internal/;
/** What must never come back: the repository's package.json, /etc/passwd, git config, our sources. */
const LEAKS = /"devDependencies"|root:x?:0:0|\[core\]|import \{|#!\/usr\/bin\/env/;

interface RawResponse {
  status: number;
  headers: string;
  body: string;
}

/** Sends `request` as it is and reads the response until the server closes (or 5 s pass). */
function raw(port: number, request: string | Buffer, opts: { endAfterWrite?: boolean } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no complete response within 5 s to ${JSON.stringify(String(request).slice(0, 120))}`));
    }, 5000);
    sock.on('connect', () => {
      sock.write(request);
      if (opts.endAfterWrite) sock.end();
    });
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', () => {}); // a reset after the response is the server's right
    sock.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      const headers = split < 0 ? text : text.slice(0, split);
      const body = split < 0 ? '' : text.slice(split + 4);
      resolve({ status, headers, body: /^transfer-encoding:\s*chunked/im.test(headers) ? dechunk(body) : body });
    });
  });
}

/** The payload of a chunked body (what arrived of it). */
function dechunk(body: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', i);
    if (eol < 0) return out;
    const size = parseInt(body.slice(i, eol), 16);
    if (!(size > 0)) return out;
    out += body.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
}

const get = (path: string, headers = '') => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${headers}\r\n`;
const post = (path: string, body: string, headers = '') =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers}\r\n${body}`;

/** Every endpoint that changes something, from the route table itself, so a new one is covered by itself. */
const CHANGING = Object.entries(apiRoutes({} as HttpDeps))
  .filter(([, r]) => r.change)
  .map(([path]) => path);

describe('HTTP abuse against the server process', () => {
  const fx = serverFixture({ 'ads.txt#adblock': `||${VALID_NAME}^\n` }, ['--api-token', TOKEN, '--rate-limit', '0']);
  let assets: string[] = [];

  beforeAll(async () => {
    assets = await Promise.all(['/', '/index.html', '/app.js', '/app.css'].map(async (p) => (await raw(fx.srv.http.port, get(p))).body));
  });

  /** DNS still answers right after each group of requests. */
  async function dnsStillAnswers(attack: Attack): Promise<void> {
    const r = await attack.timed(() => udpExchange('127.0.0.1', fx.srv.dns.port, makeQuery(VALID_NAME, 'A')));
    expect(addressesOf(r)).toEqual([VALID_ANSWER]);
  }

  /** No user entry and no pause: nothing any of the refused requests asked for happened. */
  async function nothingChanged(): Promise<void> {
    const lists = JSON.parse((await raw(fx.srv.http.port, get('/api/lists'))).body) as { user: { allow: unknown[]; deny: unknown[] } };
    const health = JSON.parse((await raw(fx.srv.http.port, get('/api/health'))).body) as { paused: { everyone: string | null; clients: unknown[] }; refresh: { lastStartedAt: number | null } };
    expect(lists.user.allow, 'user allow entries').toEqual([]);
    expect(lists.user.deny, 'user deny entries').toEqual([]);
    expect(health.paused, 'pause').toEqual({ everyone: null, clients: [] });
    expect(health.refresh.lastStartedAt, 'no list refresh was started').toBeNull();
  }

  it('serves no file outside the dashboard, whatever the path says', async () => {
    const attack = new Attack(fx.srv, 'HTTP path traversal on static files');
    const paths = [
      '/../package.json',
      '/../../../../etc/passwd',
      '/%2e%2e/package.json',
      '/%2e%2e%2fpackage.json',
      '/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd',
      '/%252e%252e/package.json',
      '//etc/passwd',
      '///etc/passwd',
      '/..%5cpackage.json',
      '/%5c..%5c..%5cpackage.json',
      '/..\\package.json',
      '/app.js/../../package.json',
      '/....//package.json',
      '/%c0%ae%c0%ae/package.json',
      '/index.html%00.js',
      '/app.js%00../../package.json',
      '/server/dashboard/app.js',
      '/dist/cli.js',
      '/.git/config',
      '/package.json',
      '/api/../../package.json',
      'http://127.0.0.1/../package.json',
      '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/?file=../package.json',
      '/app.css?../../package.json',
    ];
    const bad: string[] = [];
    for (const path of paths) {
      const r = await raw(fx.srv.http.port, get(path));
      const isAsset = r.status === 200 && assets.includes(r.body);
      if (!isAsset && ![400, 403, 404].includes(r.status)) bad.push(`${path}: status ${r.status}`);
      if (LEAKS.test(r.body)) bad.push(`${path}: the body leaks a file: ${r.body.slice(0, 80)}`);
      if (STACK_TRACE.test(r.body)) bad.push(`${path}: a stack trace in the body`);
    }
    await dnsStillAnswers(attack);
    attack.finish({ sent: paths.length, unit: 'requests' });
    expect(bad).toEqual([]);
    expect(exited(fx.srv)).toBe(false);
  });

  it(`refuses every wrong token on every changing endpoint (${CHANGING.join(', ')}) and changes nothing`, async () => {
    const attack = new Attack(fx.srv, 'HTTP wrong tokens on every changing endpoint');
    expect(CHANGING.length).toBeGreaterThanOrEqual(4);
    const wrongs = [
      '',
      'Authorization: \r\n',
      'Authorization: Bearer\r\n',
      'Authorization: Bearer \r\n',
      `Authorization: Bearer ${TOKEN}x\r\n`,
      `Authorization: Bearer ${TOKEN.slice(0, -1)}\r\n`,
      `Authorization: Bearer ${TOKEN.toUpperCase()}\r\n`,
      `Authorization: Bearer ${TOKEN} ${TOKEN}\r\n`,
      `Authorization: Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}\r\n`,
      `Authorization: Token ${TOKEN}\r\n`,
      `Cookie: token=${TOKEN}\r\n`,
      `X-Api-Token: ${TOKEN}\r\n`,
    ];
    const bodies: Record<string, string> = { '/api/allow': '{"name":"tracking.example.com"}', '/api/deny': '{"name":"www.example.org"}', '/api/pause': '{"seconds":600}' };
    const bad: string[] = [];
    let sent = 0;
    for (const path of CHANGING) {
      for (const header of wrongs) {
        const r = await raw(fx.srv.http.port, post(path, bodies[path] ?? '{}', header));
        sent++;
        if (r.status !== 401) bad.push(`${path} with ${JSON.stringify(header.trim()) || 'no token'}: ${r.status}`);
        if (STACK_TRACE.test(r.body)) bad.push(`${path}: a stack trace in the body`);
      }
      // The token in the query string is not a token either.
      const q = await raw(fx.srv.http.port, post(`${path}?token=${TOKEN}&access_token=${TOKEN}`, bodies[path] ?? '{}'));
      sent++;
      if (q.status !== 401) bad.push(`${path}?token=…: ${q.status}`);
      // Nor does another method get around it.
      for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
        const m = await raw(fx.srv.http.port, `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        sent++;
        if (![401, 405].includes(m.status)) bad.push(`${method} ${path}: ${m.status}`);
      }
    }
    await nothingChanged();
    await dnsStillAnswers(attack);
    attack.finish({ sent, unit: 'requests' });
    expect(bad).toEqual([]);
  });

  it('refuses oversized and lying bodies without reading them all, and changes nothing', async () => {
    const attack = new Attack(fx.srv, 'HTTP oversized and lying bodies');
    const auth = `Authorization: Bearer ${TOKEN}\r\n`;
    const big = JSON.stringify({ name: 'x'.repeat(1 << 20) });
    const results: [string, RawResponse][] = [];
    // Content-Length says 10 MB, and the sender ends after a few bytes.
    results.push(['declared 10 MB', await raw(fx.srv.http.port, `POST /api/allow HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n${auth}\r\n{"name":`, { endAfterWrite: true })]);
    // 1 MB sent in full with a true Content-Length.
    results.push(['1 MB body', await raw(fx.srv.http.port, post('/api/allow', big, auth))]);
    // Chunked, no length at all: the cap must count what arrives.
    const chunk = 'x'.repeat(8192);
    const chunked = `POST /api/deny HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n${auth}\r\n${Array.from({ length: 64 }, () => `${(8192).toString(16)}\r\n${chunk}\r\n`).join('')}0\r\n\r\n`;
    results.push(['512 KB chunked', await raw(fx.srv.http.port, chunked)]);
    // Wrong token and a huge body: refused on the token, before the body matters.
    results.push(['wrong token, 1 MB', await raw(fx.srv.http.port, post('/api/pause', big, `Authorization: Bearer nope-nope-nope-nope\r\n`))]);
    // A body on a GET endpoint is ignored, not read into memory as JSON.
    results.push(['1 MB on a GET endpoint', await raw(fx.srv.http.port, `GET /api/summary HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: ${big.length}\r\n\r\n${big}`)]);
    await nothingChanged();
    await dnsStillAnswers(attack);
    attack.finish({ sent: results.length, unit: 'requests' });
    const statuses = Object.fromEntries(results.map(([what, r]) => [what, r.status]));
    expect(statuses).toEqual({ 'declared 10 MB': 413, '1 MB body': 413, '512 KB chunked': 413, 'wrong token, 1 MB': 401, '1 MB on a GET endpoint': 200 });
    for (const [what, r] of results) expect(r.body, what).not.toMatch(STACK_TRACE);
  });

  it('answers malformed requests with a status and a message, never a stack trace', async () => {
    const attack = new Attack(fx.srv, 'HTTP malformed requests');
    const requests: [string, string | Buffer][] = [
      ['bad JSON', post('/api/allow', '{"name":', `Authorization: Bearer ${TOKEN}\r\n`)],
      ['JSON array', post('/api/allow', '["x"]', `Authorization: Bearer ${TOKEN}\r\n`)],
      ['deep JSON', post('/api/allow', `${'['.repeat(5000)}${']'.repeat(5000)}`, `Authorization: Bearer ${TOKEN}\r\n`)],
      ['invalid UTF-8 bytes in the body', Buffer.from(`POST /api/allow HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 21\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n{"name":"\xff\xfe.example"}`, 'latin1')],
      ['name with a NUL', post('/api/deny', '{"name":"a\\u0000b.example"}', `Authorization: Bearer ${TOKEN}\r\n`)],
      ['pause for ever', post('/api/pause', '{"seconds":1e400}', `Authorization: Bearer ${TOKEN}\r\n`)],
      ['bad percent-encoding', get('/api/why?name=%ff%fe%zz')],
      ['a 20 KB query string', get(`/api/querylog?name=${'a'.repeat(20_000)}`)],
      ['a 40 KB header', get('/api/summary', `X-Big: ${'b'.repeat(40_000)}\r\n`)],
      ['an unknown method', 'BREW /api/summary HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'],
      ['not HTTP at all', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n'],
      ['HTTP/0.9', 'GET /\r\n\r\n'],
      ['a request line of 100 KB', `GET /${'c'.repeat(100_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
      ['a bare LF request', 'GET /api/health HTTP/1.1\nHost: 127.0.0.1\nConnection: close\n\n'],
      ['two Content-Lengths', 'POST /api/allow HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}'],
    ];
    const bad: string[] = [];
    for (const [what, req] of requests) {
      const r = await raw(fx.srv.http.port, req, { endAfterWrite: true });
      if (STACK_TRACE.test(r.body) || STACK_TRACE.test(r.headers)) bad.push(`${what}: a stack trace`);
      if (r.status >= 500) bad.push(`${what}: status ${r.status}`);
    }
    await nothingChanged();
    await dnsStillAnswers(attack);
    attack.finish({ sent: requests.length, unit: 'requests' });
    const errors = fx.srv.logs.join('').split('\n').filter((l) => l.includes('"level":"error"'));
    expect(bad).toEqual([]);
    expect(errors, 'error lines the requests caused in the server log').toEqual([]);
    expect(exited(fx.srv)).toBe(false);
  });
});
