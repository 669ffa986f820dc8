// DNS over a stream (TCP, TLS): every message is preceded by its length in two bytes
// (RFC 1035 §4.2.2, RFC 7858 §3.3). Reads arrive in arbitrary fragments.

/** `msg` with its 2-byte length prefix, in one buffer so it goes out in one write. */
export function frame(msg: Buffer): Buffer {
  const out = Buffer.allocUnsafe(msg.length + 2);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

/** Collects stream chunks and hands out whole messages. */
export class FrameDecoder {
  private pending: Buffer | null = null;

  push(chunk: Buffer, onMessage: (msg: Buffer) => void): void {
    const data = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    let off = 0;
    while (data.length - off >= 2) {
      const len = data.readUInt16BE(off);
      if (data.length - off - 2 < len) break;
      const body = data.subarray(off + 2, off + 2 + len);
      // A message that shares its chunk with others is copied so a cached answer does not pin the chunk.
      onMessage(len + 2 === data.length ? body : Buffer.from(body));
      off += 2 + len;
    }
    this.pending = off === data.length ? null : data.subarray(off);
  }
}
