// The benchmark's upstream: a tiny UDP responder on loopback that answers every A question with
// one address (TTL one hour) and every other type with an empty NOERROR, copying the question as
// sent (case and all). It does as little as possible per packet so that forwarding workloads
// measure the resolver under test, not the upstream.
//
// Run as its own process (the harness pins it next to the load generator):
//   node dist/bench/stub-upstream.js [--port N]   → prints {"port":N} once listening
import { createSocket, type Socket } from 'node:dgram';
import { pathToFileURL } from 'node:url';

export const STUB_ADDRESS = [198, 51, 100, 7] as const;
export const STUB_ADDRESS_TEXT = STUB_ADDRESS.join('.');
const TTL = 3600;

// Answer RR after the question: pointer to the question name, A IN, TTL, 4-byte address.
const A_RR = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, (TTL >>> 24) & 255, (TTL >>> 16) & 255, (TTL >>> 8) & 255, TTL & 255, 0, 4, ...STUB_ADDRESS]);

/** The answer to `msg`, or null when it is not a query worth answering. */
export function stubAnswer(msg: Buffer): Buffer | null {
  if (msg.length < 17 || (msg[2] & 0x80) !== 0 || msg.readUInt16BE(4) !== 1) return null;
  // End of the one question: walk the labels (no compression in a question we accept).
  let o = 12;
  while (o < msg.length) {
    const len = msg[o];
    if (len === 0) break;
    if (len > 63) return null;
    o += len + 1;
  }
  const qEnd = o + 5;
  if (qEnd > msg.length) return null;
  const qtype = msg.readUInt16BE(o + 1);
  const isA = qtype === 1;
  const size = qEnd + (isA ? A_RR.length : 0);
  // A fresh (pooled) buffer each time: libuv may still hold the previous one while it sends.
  const out = Buffer.allocUnsafe(size);
  msg.copy(out, 0, 0, qEnd);
  out[2] = 0x80 | (msg[2] & 0x79); // QR, keep opcode and RD
  out[3] = 0x80; // RA, NOERROR
  out[6] = 0;
  out[7] = isA ? 1 : 0;
  out[8] = out[9] = out[10] = out[11] = 0; // no authority, no additional (the client's OPT is dropped)
  if (isA) A_RR.copy(out, qEnd);
  return out;
}

export async function startStub(port = 0, host = '127.0.0.1'): Promise<{ socket: Socket; port: number; answered: () => number }> {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  let answered = 0;
  socket.on('message', (msg, rinfo) => {
    const reply = stubAnswer(msg);
    if (!reply) return;
    answered++;
    socket.send(reply, rinfo.port, rinfo.address);
  });
  socket.on('error', (err) => process.stderr.write(`stub upstream: ${err.message}\n`));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => resolve());
  });
  return { socket, port: socket.address().port, answered: () => answered };
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : 0;
  const stub = await startStub(port);
  process.stdout.write(`${JSON.stringify({ port: stub.port })}\n`);
  const stop = () => {
    stub.socket.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`stub upstream: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
