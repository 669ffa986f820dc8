// Content decoding as a chain of async-iterable stages, so the size cap and hashing downstream
// always see decoded bytes (a small gzip bomb cannot get past maxBytes).
import { Readable, pipeline } from 'node:stream';
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createInflateRaw } from 'node:zlib';
import { FetchError } from './errors.js';

export type Chunks = AsyncIterable<Buffer>;
export type Stage = (source: Chunks) => Chunks;

/** What we can decode; sent as Accept-Encoding. (zstd needs Node ≥ 22.15, so it is not offered.) */
export const ACCEPT_ENCODING = 'gzip, deflate, br';

/**
 * Decoding stages for a Content-Encoding header, in the order to apply them (the header lists
 * encodings in the order they were applied, so decoding runs right to left), followed by a
 * stage that gunzips a body that is itself a gzip file (a `.gz` list served without
 * Content-Encoding).
 */
export function decodingStages(contentEncoding: string | undefined, url: string): Stage[] {
  const stages: Stage[] = [];
  const codings = (contentEncoding ?? '').split(',');
  for (let i = codings.length - 1; i >= 0; i--) {
    const coding = codings[i]!.trim().toLowerCase();
    if (coding === '' || coding === 'identity') continue;
    if (coding === 'gzip' || coding === 'x-gzip') stages.push(through(url, coding, () => createGunzip()));
    else if (coding === 'br') stages.push(through(url, coding, () => createBrotliDecompress()));
    // RFC 9110 deflate is zlib-wrapped, but some servers send raw deflate: look at the header byte.
    else if (coding === 'deflate') stages.push(through(url, coding, (head) => ((head[0]! & 0x0f) === 8 ? createInflate() : createInflateRaw())));
    else throw new FetchError('encoding', `${url}: unsupported content-encoding "${coding}"`);
  }
  stages.push(through(url, 'gzip file', (head) => (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b ? createGunzip() : null)));
  return stages;
}

/**
 * A stage that peeks at the first chunk, then passes everything through the transform `pick`
 * chooses (or unchanged when it chooses none). Errors flow downstream; when the consumer stops
 * early, the transform and the source are destroyed.
 */
function through(url: string, what: string, pick: (head: Buffer) => Transform | null): Stage {
  return async function* (source: Chunks): AsyncGenerator<Buffer> {
    const it = source[Symbol.asyncIterator]();
    const first = await it.next();
    if (first.done) return;
    const head = first.value;
    // Remembered so a failure upstream (reset, timeout) is not reported as a corrupt encoding.
    let upstreamError: unknown = undefined;
    const all = (async function* (): AsyncGenerator<Buffer> {
      try {
        yield head;
        for (;;) {
          let next: IteratorResult<Buffer>;
          try {
            next = await it.next();
          } catch (err) {
            upstreamError = err;
            throw err;
          }
          if (next.done) return;
          yield next.value;
        }
      } finally {
        await it.return?.();
      }
    })();
    const transform = pick(head);
    if (!transform) {
      yield* all;
      return;
    }
    // pipeline destroys every stream with the first error, so iterating `transform` rethrows it.
    pipeline(Readable.from(all, { objectMode: false }), transform, () => {});
    try {
      yield* transform as AsyncIterable<Buffer>;
    } catch (err) {
      if (err === upstreamError || err instanceof FetchError) throw err;
      const detail = err instanceof Error ? err.message : String(err);
      throw new FetchError('encoding', `${url}: corrupt ${what} body (${detail})`, false, undefined, { cause: err });
    } finally {
      transform.destroy();
    }
  };
}
