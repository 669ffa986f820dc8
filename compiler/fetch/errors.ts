// Why one attempt at fetching a list failed. Callers and the retry loop decide by `code` and
// `transient`, never by message text; the message is for people and always names the URL.

export type FetchErrorCode =
  | 'bad-id' // the source id cannot name a cache file
  | 'bad-url' // not a URL, or a scheme other than http(s)
  | 'timeout' // no complete response within timeoutMs
  | 'network' // connect refused, reset, TLS, DNS…
  | 'http' // a status other than 2xx / 304
  | 'too-large' // decoded body over maxBytes
  | 'html' // an HTML page (captive portal, error page) instead of a list
  | 'binary' // NUL bytes or mostly control bytes
  | 'empty' // a 2xx with no body
  | 'unusable' // a body that parses to no usable entries, or far fewer than the last good copy
  | 'encoding' // unsupported or corrupt content-encoding / gzip
  | 'cache'; // reading or writing the cache directory failed

export class FetchError extends Error {
  override readonly name = 'FetchError';

  constructor(
    readonly code: FetchErrorCode,
    message: string,
    /** worth another attempt: timeouts, resets, 5xx, 408, 429 */
    readonly transient = false,
    /** the server's Retry-After, in ms, when it sent one */
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
