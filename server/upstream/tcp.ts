// Plain DNS over TCP: one connection per query (RFC 7766 allows it), used directly for tcp://
// upstreams and by UDP when an answer comes back truncated.
import { connect } from 'node:net';
import { FrameDecoder, frame } from './framing.js';
import type { UpstreamSpec } from './spec.js';
import { counted, newCounters, networkError, UpstreamError, type Upstream, type UpstreamCounters } from './types.js';
import { answersQuery, assertQuery, randomId, readId, restoreId, withId } from './wire.js';

export class TcpUpstream implements Upstream {
  readonly name: string;
  readonly counters = newCounters();

  constructor(readonly spec: UpstreamSpec) {
    this.name = spec.url;
  }

  exchange(query: Buffer, timeoutMs: number): Promise<Buffer> {
    assertQuery(query);
    return counted(this.counters, async () => {
      const reply = await exchangeOverTcp(this.name, this.spec.host, this.spec.port, withId(query, randomId()), timeoutMs, this.counters);
      return restoreId(reply, readId(query));
    });
  }

  async close(): Promise<void> {
    // Nothing pooled: every connection closes with its query.
  }
}

/**
 * Sends `wire` (already carrying our random ID) over a fresh connection and resolves with the
 * reply as received. One deadline covers connect, write and read.
 */
export function exchangeOverTcp(
  name: string,
  host: string,
  port: number,
  wire: Buffer,
  timeoutMs: number,
  counters: UpstreamCounters,
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const decoder = new FrameDecoder();
    const socket = connect({ host, port });
    let settled = false;
    const timer = setTimeout(() => {
      const what = socket.connecting ? 'could not connect over TCP' : 'no answer over TCP';
      settle(new UpstreamError('timeout', `${what} within ${timeoutMs} ms`, name));
    }, timeoutMs);

    function settle(err: UpstreamError | null, reply?: Buffer): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== null) reject(err);
      else resolve(reply!);
    }

    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) =>
      decoder.push(chunk, (msg) => {
        if (settled) return;
        if (answersQuery(wire, msg)) return settle(null, msg);
        // Nobody else can write into our own connection, so a wrong reply here is a broken server:
        // give up at once instead of waiting out the deadline.
        counters.mismatched++;
        settle(new UpstreamError('bad-response', `reply over TCP does not match the query (${msg.length} bytes)`, name));
      }),
    );
    socket.on('error', (err) => settle(networkError(name, err)));
    socket.on('close', () => settle(new UpstreamError('network', 'TCP connection closed before the answer', name)));
    socket.write(frame(wire));
  });
}
