// DNS over TCP (RFC 7766): length-prefixed messages, pipelined and answered out of order, with
// a connection cap, an idle timeout, a deadline for each partly received message (slowloris), a
// cap on queries in flight per connection and write backpressure.
import { createServer, type Server, type Socket } from 'node:net';
import type { PacketHandler } from '../handle.js';
import type { Client } from '../pipeline/types.js';
import { isPromise } from '../pipeline/types.js';
import { formatAddress, ListenError } from './errors.js';

export interface TcpLimits {
  maxConnections: number;
  idleMs: number;
  /** A message whose first byte arrived must be complete within this time. */
  readDeadlineMs: number;
  maxInFlightPerConnection: number;
  /** Stop reading from a client that does not read its answers once this much is queued. */
  maxQueuedBytes: number;
}

const MESSAGES_PER_TURN = 64;

export const DEFAULT_TCP_LIMITS: TcpLimits = {
  maxConnections: 256,
  idleMs: 10_000,
  readDeadlineMs: 5_000,
  maxInFlightPerConnection: 64,
  maxQueuedBytes: 64 * 1024,
};

export interface TcpListener {
  readonly address: { host: string; port: number };
  readonly connections: () => number;
  /**
   * Graceful close: stop accepting connections and reading queries, let every query in flight be
   * answered, then end each connection; whatever is still open after `graceMs` is destroyed.
   * Calling it again returns the same promise.
   */
  close(graceMs?: number): Promise<void>;
}

/** How long close() waits for answers in flight when the caller gives no deadline. */
const DEFAULT_CLOSE_GRACE_MS = 1000;

interface Connection {
  /** Stop taking queries; end the connection once the ones in flight are answered. */
  drain(): void;
}

export function listenTcp(host: string, port: number, handle: PacketHandler, onError: (err: Error) => void, limits: TcpLimits = DEFAULT_TCP_LIMITS): Promise<TcpListener> {
  const sockets = new Map<Socket, Connection>();
  const family = host.includes(':') ? 6 : 4;
  let closing: Promise<void> | null = null;
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    if (sockets.size >= limits.maxConnections || closing !== null) {
      socket.destroy();
      return;
    }
    sockets.set(socket, serveConnection(socket, { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, family }, handle, onError, limits));
    socket.on('close', () => sockets.delete(socket));
  });
  server.maxConnections = limits.maxConnections + 16; // we refuse politely above the cap ourselves

  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) => reject(new ListenError(formatAddress(host, port), 'TCP', err));
    server.once('error', fail);
    // Not exclusive: in cluster mode the primary holds the socket and deals connections to the workers.
    server.listen({ host, port, ipv6Only: family === 6 }, () => {
      server.off('error', fail);
      server.on('error', onError);
      const addr = server.address();
      if (!addr || typeof addr === 'string') return reject(new Error(`TCP listener on ${formatAddress(host, port)} has no address`));
      resolve({
        address: { host: addr.address, port: addr.port },
        connections: () => sockets.size,
        close: (graceMs = DEFAULT_CLOSE_GRACE_MS) =>
          (closing ??= new Promise<void>((r) => {
            const force = setTimeout(() => {
              for (const s of sockets.keys()) s.destroy();
            }, graceMs);
            // Called once every connection has closed, drained or forced.
            server.close(() => {
              clearTimeout(force);
              r();
            });
            for (const c of sockets.values()) c.drain();
          })),
      });
    });
  });
}

function serveConnection(socket: Socket, client: Client, handle: PacketHandler, onError: (err: Error) => void, limits: TcpLimits): Connection {
  let buffered: Buffer = Buffer.alloc(0);
  let inFlight = 0;
  let ended = false;
  let draining = false;
  let readTimer: NodeJS.Timeout | null = null;
  let paused = false;

  socket.setTimeout(limits.idleMs, () => {
    if (inFlight === 0) socket.destroy();
  });
  socket.on('error', () => socket.destroy());

  const maybeResume = () => {
    if (paused && inFlight < limits.maxInFlightPerConnection && socket.writableLength < limits.maxQueuedBytes) {
      paused = false;
      if (!yielded) socket.resume();
      if (buffered.length >= 2) setImmediate(processBuffered);
    }
  };
  const maybeFinish = () => {
    if ((ended || draining) && inFlight === 0 && buffered.length === 0 && !socket.writableEnded) socket.end();
  };
  socket.on('drain', maybeResume);

  const reply = (wire: Buffer | null) => {
    inFlight--;
    if (wire && !socket.destroyed && !socket.writableEnded) {
      const framed = Buffer.allocUnsafe(wire.length + 2);
      framed.writeUInt16BE(wire.length, 0);
      wire.copy(framed, 2);
      socket.write(framed);
    }
    maybeResume();
    maybeFinish();
  };

  // The deadline runs from the first byte of a message, and extra bytes do not extend it: a
  // client trickling one byte a second cannot hold a connection for long.
  const armReadDeadline = () => {
    if (buffered.length === 0) {
      if (readTimer) clearTimeout(readTimer);
      readTimer = null;
    } else if (!readTimer) {
      readTimer = setTimeout(() => socket.destroy(), limits.readDeadlineMs);
    }
  };
  const overLimits = () => inFlight >= limits.maxInFlightPerConnection || socket.writableLength >= limits.maxQueuedBytes;

  /**
   * Answers complete messages until a limit is hit; the rest waits in `buffered`. At most
   * MESSAGES_PER_TURN are answered before yielding to the event loop, so one connection full of
   * pipelined queries cannot starve UDP clients or other connections.
   */
  let yielded = false;
  const processBuffered = () => {
    if (draining) return;
    let budget = MESSAGES_PER_TURN;
    while (buffered.length >= 2 && !socket.destroyed) {
      if (budget-- === 0) {
        if (!yielded) {
          yielded = true;
          socket.pause();
          setImmediate(() => {
            yielded = false;
            if (!paused) socket.resume();
            processBuffered();
          });
        }
        return;
      }
      if (overLimits()) {
        if (!paused) {
          paused = true;
          socket.pause();
        }
        return;
      }
      const len = buffered.readUInt16BE(0);
      if (len === 0) {
        socket.destroy();
        return;
      }
      if (buffered.length < len + 2) break;
      const msg = buffered.subarray(2, len + 2);
      buffered = buffered.subarray(len + 2);
      if (readTimer) {
        clearTimeout(readTimer);
        readTimer = null;
      }
      inFlight++;
      let result: ReturnType<PacketHandler>;
      try {
        result = handle(msg, client, 'tcp');
      } catch (err) {
        onError(err as Error);
        result = null;
      }
      if (isPromise(result)) {
        result.then(reply, (err: Error) => {
          onError(err);
          reply(null);
        });
      } else {
        reply(result);
      }
    }
    armReadDeadline();
  };

  socket.on('data', (chunk: Buffer) => {
    if (draining) return; // read and dropped: unread bytes would turn our close into a reset that can cut off the last answers
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    processBuffered();
  });
  socket.on('end', () => {
    ended = true;
    if (buffered.length > 0) {
      // half a message and then FIN: nothing more can complete it
      buffered = Buffer.alloc(0);
      if (readTimer) clearTimeout(readTimer);
    }
    maybeFinish();
  });
  socket.on('close', () => {
    if (readTimer) clearTimeout(readTimer);
  });

  return {
    drain: () => {
      draining = true;
      buffered = Buffer.alloc(0); // queries not started yet are not answered: the client asks elsewhere
      if (readTimer) clearTimeout(readTimer);
      readTimer = null;
      socket.resume();
      maybeFinish();
    },
  };
}
