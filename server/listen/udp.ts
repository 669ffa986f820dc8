// DNS over UDP: one socket per listen address, answers sent from the same socket.
import { createSocket, type Socket } from 'node:dgram';
import type { PacketHandler } from '../handle.js';
import type { Client } from '../pipeline/types.js';
import { isPromise } from '../pipeline/types.js';
import { formatAddress, ListenError } from './errors.js';

export interface UdpListener {
  readonly address: { host: string; port: number };
  readonly inFlight: () => number;
  /** Stop taking new queries but keep the socket open so answers in flight can still be sent. */
  drain(): void;
  close(): Promise<void>;
}

/**
 * dgram resolves the destination of every send through `lookup` (dns.lookup by default, which
 * answers an IP literal on the next tick). We only ever answer the address a query came from, so
 * hand it back at once: one tick, one closure and an isIP check less per answer.
 */
function literalAddress(address: string, _family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

/** Large enough to ride out a burst from a whole household while the event loop is busy. */
const RECV_BUFFER = 4 * 1024 * 1024;

export function listenUdp(host: string, port: number, handle: PacketHandler, onError: (err: Error) => void): Promise<UdpListener> {
  const v6 = host.includes(':');
  const socket: Socket = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6, reuseAddr: false, lookup: literalAddress });
  let pending = 0;
  let draining = false;
  let closed = false;
  const family = v6 ? 6 : 4;

  const send = (wire: Buffer | null, client: Client) => {
    if (wire && !closed) socket.send(wire, client.port, client.address);
  };

  socket.on('message', (msg, rinfo) => {
    if (draining) return;
    const client: Client = { address: rinfo.address, port: rinfo.port, family };
    let result: ReturnType<PacketHandler>;
    try {
      result = handle(msg, client, 'udp');
    } catch (err) {
      onError(err as Error); // the handler guards itself; this is a last line of defence
      return;
    }
    if (!isPromise(result)) return send(result, client);
    pending++;
    result.then(
      (wire) => {
        pending--;
        send(wire, client);
      },
      (err: Error) => {
        pending--;
        onError(err);
      },
    );
  });

  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) => reject(new ListenError(formatAddress(host, port), 'UDP', err));
    socket.once('error', fail);
    socket.bind(port, host, () => {
      socket.off('error', fail);
      socket.on('error', onError);
      try {
        socket.setRecvBufferSize(RECV_BUFFER);
      } catch {
        // the kernel caps it (net.core.rmem_max); the default still works
      }
      const addr = socket.address();
      resolve({
        address: { host: addr.address, port: addr.port },
        inFlight: () => pending,
        drain: () => {
          draining = true;
        },
        close: () =>
          new Promise<void>((r) => {
            if (closed) return r();
            closed = true;
            socket.close(() => r());
          }),
      });
    });
  });
}
