// Fetching list sources over http(s): conditional GET against a per-source cache, decoded and
// size-capped streaming to a temp file, a sanity check that the body is a list, retries for
// transient failures, and the last good copy when anything goes wrong. Per-source problems
// never throw: they come back as a `stale` or `failed` result that says what happened.
import { createHash } from 'node:crypto';
import { mkdir, open, rename } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import { Agent, interceptors, request } from 'undici';
import type { Dispatcher } from 'undici';
import { PACKAGE_VERSION } from '../common/paths.js';
import { cachePaths, isSafeId, readCache, removeQuietly, sweepTempFiles, tempPathFor, writeFileAtomic } from './fetch/cache.js';
import type { CachePaths, CachedCopy, Sidecar } from './fetch/cache.js';
import { ACCEPT_ENCODING, decodingStages } from './fetch/decode.js';
import type { Chunks } from './fetch/decode.js';
import { FetchError } from './fetch/errors.js';
import type { FetchErrorCode } from './fetch/errors.js';
import { backoffMs, parseRetryAfter, sleep } from './fetch/retry.js';
import { SNIFF_BYTES, isHtmlContentType, whyNotAList } from './fetch/sniff.js';

export { FetchError } from './fetch/errors.js';
export type { FetchErrorCode } from './fetch/errors.js';

export interface FetchOptions {
  /** DATA_DIR/cache; one body file (`<id>.txt`) and one JSON sidecar (`<id>.json`) per source id */
  cacheDir: string;
  /** deadline for one source from the first request to a complete body, retries and backoff included; default 30 000 */
  timeoutMs?: number;
  /** decoded body cap, default 64 MiB */
  maxBytes?: number;
  /** extra attempts after a transient failure (timeouts, resets, 5xx, 408, 429), default 2 */
  retries?: number;
  /** first backoff delay; doubles per retry, with jitter; default 500 */
  retryBaseMs?: number;
  /** longest Retry-After we wait for; a server asking for more is not retried; default 30 000 */
  retryAfterCapMs?: number;
  userAgent?: string;
  /**
   * Leave a fresh body beside the cache until the caller has looked at it: the result's `pending`
   * then moves it into the cache (accept) or drops it for the last good copy (reject). A body
   * that passes the HTML/binary sniff can still be a list that parses to nothing.
   */
  deferCommit?: boolean;
}

export type FetchStatus = 'fresh' | 'not-modified' | 'stale' | 'failed';

export interface FetchResult {
  /** source id (file-name safe) */
  id: string;
  status: FetchStatus;
  /** the body file to parse (fresh, not-modified or stale copy); null when failed with no cache */
  path: string | null;
  etag?: string;
  lastModified?: string;
  sha256?: string;
  bytes?: number;
  /** unix ms of the copy in `path` */
  fetchedAt?: number;
  /** why this attempt failed (for stale and failed), human readable with the URL */
  error?: string;
  /** the same, for code: decide by this, not by `error` */
  errorCode?: FetchErrorCode;
  /** deferCommit only, status fresh: `path` is a temp file that is not in the cache yet */
  pending?: PendingBody;
}

export interface PendingBody {
  /** Moves the new body into the cache and records its validators (a sidecar failure lands in `error`). */
  accept(): Promise<void>;
  /** Deletes the new body and falls back to the cached copy: the stale (or failed) result to use instead. */
  reject(reason: string): Promise<FetchResult>;
}

export interface Source {
  id: string;
  url: string;
}

const MiB = 1024 * 1024;
const DEFAULTS = {
  timeoutMs: 30_000,
  maxBytes: 64 * MiB,
  retries: 2,
  retryBaseMs: 500,
  retryAfterCapMs: 30_000,
  concurrency: 4,
} as const;
const MAX_REDIRECTS = 5;
/** Temp files older than this in the cache dir are leftovers of a crashed run. */
const TEMP_FILE_MAX_AGE_MS = 60 * 60 * 1000;

interface Settings {
  cacheDir: string;
  deferCommit: boolean;
  timeoutMs: number;
  maxBytes: number;
  retries: number;
  retryBaseMs: number;
  retryAfterCapMs: number;
  userAgent: string;
}

export async function fetchSource(id: string, url: string, opts: FetchOptions): Promise<FetchResult> {
  const settings = resolveOptions(opts);
  const client = createClient(settings);
  try {
    return await fetchWith(client.dispatcher, id, url, settings);
  } finally {
    await client.close();
  }
}

/**
 * Fetch every source with at most `concurrency` (default 4) requests in flight. Results come
 * back in input order; `onProgress` sees each one as it completes.
 */
export async function fetchAll(
  sources: readonly Source[],
  opts: FetchOptions & { concurrency?: number },
  onProgress?: (r: FetchResult) => void,
): Promise<FetchResult[]> {
  const settings = resolveOptions(opts);
  const concurrency = opts.concurrency ?? DEFAULTS.concurrency;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`fetchAll: concurrency must be a positive integer, got ${concurrency}`);

  await sweepTempFiles(settings.cacheDir, TEMP_FILE_MAX_AGE_MS);
  const client = createClient(settings);
  const results = new Array<FetchResult>(sources.length);
  const claimed = new Set<string>();
  let next = 0;
  let progressFailure: { error: unknown } | null = null;

  const worker = async (): Promise<void> => {
    for (let i = next++; i < sources.length; i = next++) {
      const { id, url } = sources[i]!;
      let result: FetchResult;
      if (claimed.has(id)) {
        // Two fetches of one id would race on the same cache files.
        result = { id, status: 'failed', path: null, errorCode: 'bad-id', error: `${url}: source id "${id}" appears twice in one fetch` };
      } else {
        claimed.add(id);
        result = await fetchWith(client.dispatcher, id, url, settings);
      }
      results[i] = result;
      if (onProgress) {
        try {
          onProgress(result);
        } catch (error) {
          // Let the other fetches finish (their temp files and sockets), then report it.
          progressFailure ??= { error };
        }
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, sources.length) }, worker));
  } finally {
    await client.close();
  }
  if (progressFailure) throw (progressFailure as { error: unknown }).error;
  return results;
}

function resolveOptions(opts: FetchOptions): Settings {
  const s: Settings = {
    cacheDir: opts.cacheDir,
    deferCommit: opts.deferCommit === true,
    timeoutMs: opts.timeoutMs ?? DEFAULTS.timeoutMs,
    maxBytes: opts.maxBytes ?? DEFAULTS.maxBytes,
    retries: opts.retries ?? DEFAULTS.retries,
    retryBaseMs: opts.retryBaseMs ?? DEFAULTS.retryBaseMs,
    retryAfterCapMs: opts.retryAfterCapMs ?? DEFAULTS.retryAfterCapMs,
    userAgent: opts.userAgent ?? `hushdns/${PACKAGE_VERSION} (blocklist compiler)`,
  };
  const problems: string[] = [];
  if (typeof s.cacheDir !== 'string' || s.cacheDir === '') problems.push('cacheDir must be a directory path');
  if (!(s.timeoutMs > 0)) problems.push(`timeoutMs must be > 0, got ${s.timeoutMs}`);
  if (!(s.maxBytes > 0)) problems.push(`maxBytes must be > 0, got ${s.maxBytes}`);
  if (!Number.isInteger(s.retries) || s.retries < 0) problems.push(`retries must be an integer ≥ 0, got ${s.retries}`);
  if (!(s.retryBaseMs >= 0)) problems.push(`retryBaseMs must be ≥ 0, got ${s.retryBaseMs}`);
  if (!(s.retryAfterCapMs >= 0)) problems.push(`retryAfterCapMs must be ≥ 0, got ${s.retryAfterCapMs}`);
  if (problems.length > 0) throw new RangeError(`fetch options: ${problems.join('; ')}`);
  return s;
}

function createClient(s: Settings): { dispatcher: Dispatcher; close: () => Promise<void> } {
  // The per-source deadline (an AbortSignal per attempt) is the real limit; these stop a stuck phase early.
  const agent = new Agent({
    connectTimeout: Math.min(s.timeoutMs, 10_000),
    headersTimeout: s.timeoutMs,
    bodyTimeout: s.timeoutMs,
    keepAliveTimeout: 4_000,
  });
  return {
    dispatcher: agent.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS })),
    close: () => agent.close(),
  };
}

/** One source, start to finish, on a shared dispatcher. Never throws. */
async function fetchWith(dispatcher: Dispatcher, id: string, url: string, s: Settings): Promise<FetchResult> {
  if (!isSafeId(id)) {
    return failed(id, new FetchError('bad-id', `${url}: source id "${id}" cannot name a cache file (letters, digits, '.', '_', '-'; not starting with '.')`));
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return failed(id, new FetchError('bad-url', `"${url}" is not a URL`));
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return failed(id, new FetchError('bad-url', `${url}: scheme ${parsed.protocol} is not fetched (only http and https; local files are read directly)`));
  }

  let paths: CachePaths;
  let cached: CachedCopy | null;
  try {
    await mkdir(s.cacheDir, { recursive: true });
    paths = cachePaths(s.cacheDir, id);
    cached = await readCache(paths);
  } catch (err) {
    return failed(id, new FetchError('cache', `${url}: cache directory ${s.cacheDir} unusable (${describe(err)})`, false, undefined, { cause: err }));
  }
  // Validators only for the same URL: a source whose URL changed is a different resource.
  const validators = cached?.meta && cached.meta.url === url ? cached.meta : null;

  // One deadline for the whole source: every attempt gets what is left of it, and no retry starts
  // that could not finish in time, so `timeoutMs` bounds how long a list can hold up a compile.
  const deadline = Date.now() + s.timeoutMs;
  let error: FetchError;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const outcome = await attempt(dispatcher, url, paths, validators, s, deadline);
      return await record(id, url, paths, outcome, validators, cached);
    } catch (err) {
      error = classify(err, url);
    }
    if (!error.transient || attempts > s.retries) break;
    if (error.retryAfterMs !== undefined && error.retryAfterMs > s.retryAfterCapMs) {
      error = new FetchError(error.code, `${error.message}; the server asked to retry after ${seconds(error.retryAfterMs)}, beyond the ${seconds(s.retryAfterCapMs)} cap`, false);
      break;
    }
    const wait = Math.max(error.retryAfterMs ?? 0, backoffMs(attempts - 1, s.retryBaseMs));
    if (Date.now() + wait >= deadline) {
      error = new FetchError(error.code, `${error.message}; no time left for another attempt within the ${seconds(s.timeoutMs)} deadline`, error.transient, error.retryAfterMs);
      break;
    }
    await sleep(wait);
  }
  if (attempts > 1) error = new FetchError(error.code, `${error.message} (gave up after ${attempts} attempts)`, error.transient, error.retryAfterMs);
  return fallBack(id, url, cached, error);
}

type Outcome =
  | { kind: 'fresh'; sha256: string; bytes: number; etag?: string; lastModified?: string; tmp: string | null }
  | { kind: 'not-modified'; etag?: string; lastModified?: string };

/**
 * One GET, cut off at the source's deadline. Leaves the cached body untouched unless a complete,
 * valid body arrived (and, with deferCommit, until the caller accepts it).
 */
async function attempt(dispatcher: Dispatcher, url: string, paths: CachePaths, validators: Sidecar | null, s: Settings, deadlineAt: number): Promise<Outcome> {
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new FetchError('timeout', `${url}: no complete copy within the ${seconds(s.timeoutMs)} deadline`, true)),
    Math.max(0, deadlineAt - Date.now()),
  );
  let body: Dispatcher.ResponseData['body'] | null = null;
  try {
    const headers: Record<string, string> = {
      'user-agent': s.userAgent,
      accept: 'text/plain, */*;q=0.8',
      'accept-encoding': ACCEPT_ENCODING,
    };
    if (validators?.etag) headers['if-none-match'] = validators.etag;
    if (validators?.lastModified) headers['if-modified-since'] = validators.lastModified;

    const res = await request(url, { dispatcher, method: 'GET', headers, signal: deadline.signal });
    body = res.body;
    const status = res.statusCode;
    const etag = header(res.headers, 'etag');
    const lastModified = header(res.headers, 'last-modified');

    if (status === 304) {
      if (!validators) throw new FetchError('http', `${url}: HTTP 304 Not Modified to a request that was not conditional`);
      return { kind: 'not-modified', etag, lastModified };
    }
    if (status < 200 || status > 299) throw httpError(url, status, res.headers);
    const contentType = header(res.headers, 'content-type');
    if (isHtmlContentType(contentType)) {
      throw new FetchError('html', `${url}: HTTP ${status} served an HTML page (content-type ${contentType}), not a list: a captive portal or error page?`);
    }

    let chunks: Chunks = res.body;
    for (const stage of decodingStages(header(res.headers, 'content-encoding'), url)) chunks = stage(chunks);
    const saved = await saveBody(chunks, paths.body, url, s.maxBytes, s.deferCommit);
    return { kind: 'fresh', ...saved, etag, lastModified };
  } finally {
    clearTimeout(timer);
    // Drain a short unread body (error page, 304) so the connection can be reused; dump()
    // destroys the socket instead when there is more than that.
    if (body && !body.destroyed) await body.dump({ limit: 64 * 1024 }).catch(() => {});
  }
}

/**
 * Stream decoded chunks into a temp file beside `target`, hashing and counting as they pass;
 * rename over `target` only when the body is complete, within the cap and looks like a list
 * (with `defer`, leave it at the temp path for the caller: `tmp` says where).
 */
async function saveBody(chunks: Chunks, target: string, url: string, maxBytes: number, defer: boolean): Promise<{ sha256: string; bytes: number; tmp: string | null }> {
  const tmp = tempPathFor(target);
  const hash = createHash('sha256');
  let bytes = 0;
  let head: Buffer[] | null = []; // chunks until SNIFF_BYTES have been seen, then null
  let headBytes = 0;
  const check = (): void => {
    const problem = whyNotAList(Buffer.concat(head!, Math.min(headBytes, SNIFF_BYTES)));
    if (problem) throw new FetchError(problem.code, `${url}: ${problem.reason}`);
    head = null;
  };

  try {
    const fh = await open(tmp, 'wx');
    try {
      for await (const chunk of chunks) {
        bytes += chunk.length;
        if (bytes > maxBytes) throw new FetchError('too-large', `${url}: body larger than ${maxBytes} bytes`);
        if (head) {
          head.push(chunk);
          headBytes += chunk.length;
          if (headBytes >= SNIFF_BYTES) check();
        }
        hash.update(chunk);
        for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
      if (head) check();
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (!defer) await rename(tmp, target);
  } catch (err) {
    await removeQuietly(tmp);
    throw err;
  }
  return { sha256: hash.digest('hex'), bytes, tmp: defer ? tmp : null };
}

/** Write the sidecar for what `attempt` achieved and build the result (a deferred fresh body: on accept). */
async function record(id: string, url: string, paths: CachePaths, outcome: Outcome, validators: Sidecar | null, cached: CachedCopy | null): Promise<FetchResult> {
  const now = Date.now();
  let meta: Sidecar;
  if (outcome.kind === 'fresh') {
    meta = { version: 1, id, url, sha256: outcome.sha256, bytes: outcome.bytes, fetchedAt: now, checkedAt: now };
    if (outcome.etag) meta.etag = outcome.etag;
    if (outcome.lastModified) meta.lastModified = outcome.lastModified;
  } else {
    // A 304 may carry updated validators (RFC 9111 §4.3.4); keep the old ones otherwise.
    meta = { ...validators!, checkedAt: now };
    if (outcome.etag) meta.etag = outcome.etag;
    if (outcome.lastModified) meta.lastModified = outcome.lastModified;
  }
  const result: FetchResult = { id, status: outcome.kind, path: paths.body, ...fromMeta(meta) };
  const writeSidecar = async (): Promise<void> => {
    try {
      await writeFileAtomic(paths.sidecar, JSON.stringify(meta, null, 2) + '\n');
    } catch (err) {
      // The body is good either way; without its sidecar the next run just fetches unconditionally.
      result.errorCode = 'cache';
      result.error = `${url}: could not write ${paths.sidecar} (${describe(err)})`;
    }
  };
  const tmp = outcome.kind === 'fresh' ? outcome.tmp : null;
  if (tmp === null) {
    await writeSidecar();
    return result;
  }
  result.path = tmp;
  let settled = false;
  const settle = (): void => {
    if (settled) throw new Error(`the new copy of ${url} was already accepted or rejected`);
    settled = true;
    delete result.pending;
  };
  result.pending = {
    accept: async () => {
      settle();
      await rename(tmp, paths.body);
      result.path = paths.body;
      await writeSidecar();
    },
    reject: async (reason) => {
      settle();
      await removeQuietly(tmp);
      return fallBack(id, url, cached, new FetchError('unusable', `${url}: ${reason}`));
    },
  };
  return result;
}

function fallBack(id: string, url: string, cached: CachedCopy | null, error: FetchError): FetchResult {
  if (!cached) return failed(id, error);
  if (cached.meta && cached.meta.url !== url) {
    return failed(id, new FetchError(error.code, `${error.message}; the cached copy came from ${cached.meta.url} and was not used`));
  }
  const known = cached.meta ? fromMeta(cached.meta) : { bytes: cached.bytes };
  return { id, status: 'stale', path: cached.bodyPath, ...known, error: error.message, errorCode: error.code };
}

function failed(id: string, error: FetchError): FetchResult {
  return { id, status: 'failed', path: null, error: error.message, errorCode: error.code };
}

function fromMeta(meta: Sidecar): Pick<FetchResult, 'etag' | 'lastModified' | 'sha256' | 'bytes' | 'fetchedAt'> {
  const out: Pick<FetchResult, 'etag' | 'lastModified' | 'sha256' | 'bytes' | 'fetchedAt'> = {
    sha256: meta.sha256,
    bytes: meta.bytes,
    fetchedAt: meta.fetchedAt,
  };
  if (meta.etag) out.etag = meta.etag;
  if (meta.lastModified) out.lastModified = meta.lastModified;
  return out;
}

function httpError(url: string, status: number, headers: Record<string, string | string[] | undefined>): FetchError {
  const phrase = STATUS_CODES[status] ? ` ${STATUS_CODES[status]}` : '';
  if (status >= 300 && status < 400) {
    return new FetchError('http', `${url}: HTTP ${status}${phrase} not followed (no usable Location, or more than ${MAX_REDIRECTS} redirects)`);
  }
  const transient = status >= 500 || status === 408 || status === 429;
  return new FetchError('http', `${url}: HTTP ${status}${phrase}`, transient, parseRetryAfter(headers['retry-after']));
}

/** Turn whatever an attempt threw into a FetchError that names the URL. */
function classify(err: unknown, url: string): FetchError {
  if (err instanceof FetchError) return err;
  const code = (err as { code?: unknown }).code;
  const detail = describe(err);
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new FetchError('timeout', `${url}: timed out (${detail})`, true, undefined, { cause: err });
  }
  // File-system errors carry the path they were about: the cache is at fault, not the network.
  if (typeof (err as { path?: unknown }).path === 'string') {
    return new FetchError('cache', `${url}: cache write failed (${detail})`, false, undefined, { cause: err });
  }
  if (typeof code === 'string') {
    // A bad certificate will not fix itself in a second; resets and refusals may.
    const tls = code.includes('CERT') || code.startsWith('UNABLE_TO_') || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL');
    return new FetchError('network', `${url}: network error (${detail})`, !tls, undefined, { cause: err });
  }
  return new FetchError('network', `${url}: ${detail}`, false, undefined, { cause: err });
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  const own = typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  return err.cause instanceof Error ? `${own}: ${describe(err.cause)}` : own;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
