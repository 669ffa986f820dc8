// Plain DNS over UDP, hardened against off-path spoofing (RFC 5452): a fresh socket on a random
// source port and a random ID per query, and a reply counts only when it comes from the
// upstream's own address and port and echoes our ID and question. Anything else is counted and
// ignored while we keep waiting, so a forged datagram cannot make us give up on the real one.
import { createSocket, type RemoteInfo, type SocketType } from 'node:dgram';
import { isIP } from 'node:net';
import { canonicalIp, type UpstreamSpec } from './spec.js';
import { exchangeOverTcp } from './tcp.js';
import { counted, newCounters, networkError, UpstreamError, type Upstream } from './types.js';
import { answersQuery, assertQuery, isTruncated, randomId, readId, restoreId, withId } from './wire.js';

export class UdpUpstream implements Upstream {
  readonly name: string;
  readonly counters = newCounters();
  private readonly socketType: SocketType;
  /** In the form Node reports peer addresses, so the source check is a string compare. */
  private readonly address: string;

  constructor(readonly spec: UpstreamSpec) {
    this.name = spec.url;
    this.socketType = isIP(spec.host) === 6 ? 'udp6' : 'udp4';
    this.address = canonicalIp(spec.host);
  }

  exchange(query: Buffer, timeoutMs: number): Promise<Buffer> {
    assertQuery(query);
    return counted(this.counters, async () => restoreId(await this.ask(withId(query, randomId()), timeoutMs), readId(query)));
  }

  async close(): Promise<void> {
    // Nothing pooled: every socket closes with its query.
  }

  private ask(wire: Buffer, timeoutMs: number): Promise<Buffer> {
    const deadline = performance.now() + timeoutMs;
    return new Promise<Buffer>((resolve, reject) => {
      const socket = createSocket(this.socketType);
      let open = true;
      const timer = setTimeout(() => {
        finish();
        reject(new UpstreamError('timeout', `no answer over UDP within ${timeoutMs} ms`, this.name));
      }, timeoutMs);

      const finish = (): void => {
        if (!open) return;
        open = false;
        clearTimeout(timer);
        socket.close();
      };

      socket.on('message', (msg: Buffer, from: RemoteInfo) => {
        if (!open) return;
        if (from.port !== this.spec.port || from.address !== this.address || !answersQuery(wire, msg)) {
          this.counters.mismatched++;
          return;
        }
        finish();
        if (!isTruncated(msg)) return resolve(msg);
        // The full answer did not fit: ask the same server over TCP within what is left of the deadline.
        this.counters.truncatedRetries++;
        const left = Math.max(1, Math.round(deadline - performance.now()));
        exchangeOverTcp(this.name, this.spec.host, this.spec.port, wire, left, this.counters).then(resolve, reject);
      });
      socket.on('error', (err) => {
        if (!open) return;
        finish();
        reject(networkError(this.name, err));
      });
      // Exclusive: in a cluster worker a plain bind would go through the primary, and port 0 would
      // give every worker the same shared socket, so answers could reach the wrong worker.
      socket.bind({ port: 0, exclusive: true }, () => {
        if (!open) return;
        socket.send(wire, this.spec.port, this.spec.host, (err) => {
          if (err && open) {
            finish();
            reject(networkError(this.name, err));
          }
        });
      });
    });
  }
}
