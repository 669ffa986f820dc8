// An upstream that answers every UDP query with TC=1 and resets every TCP connection on the same
// port: the server's TCP retry fails, so only failover to the next upstream can answer. The
// truncated replies come from the fake upstream's own reply engine (truncateUdp).
import { createSocket, type RemoteInfo } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { startFakeUpstream } from '../helpers/fake-upstream.js';

export interface TruncatingUpstream {
  port: number;
  udpQueries: number;
  tcpConnections: number;
  stop(): Promise<void>;
}

export async function startTruncatingUpstream(): Promise<TruncatingUpstream> {
  const engine = await startFakeUpstream();
  engine.setDefault({ truncateUdp: true });
  const state = { udpQueries: 0, tcpConnections: 0 };
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    const port = (udp.address() as { port: number }).port;
    const tcp: Server = createServer((s: Socket) => {
      state.tcpConnections++;
      s.resetAndDestroy();
    });
    const listening = await new Promise<boolean>((r) => {
      tcp.once('error', () => r(false));
      tcp.listen(port, '127.0.0.1', () => r(true));
    });
    if (!listening) {
      udp.close();
      continue;
    }
    udp.on('message', (msg: Buffer, from: RemoteInfo) => {
      state.udpQueries++;
      void engine.replies(msg, 'udp').then((out) => {
        for (const m of out) udp.send(m, from.port, from.address);
      });
    });
    return {
      port,
      get udpQueries() {
        return state.udpQueries;
      },
      get tcpConnections() {
        return state.tcpConnections;
      },
      stop: async () => {
        await new Promise<void>((r) => udp.close(() => r()));
        await new Promise<void>((r) => tcp.close(() => r()));
        await engine.stop();
      },
    };
  }
  throw new Error('truncating upstream: no port free for both UDP and TCP after 20 tries');
}
