// One UDP socket that sends a hostile datagram, then a valid query for a blocked name, and returns
// what came back for the hostile one by the time the valid one was answered: each hostile packet
// is followed by proof that the server still answers right.
import { createSocket, type Socket } from 'node:dgram';
import { addressesOf, makeQuery } from '../helpers/dns-client.js';

export interface StepResult {
  /** Replies carrying the hostile packet's ID (the ID of a packet shorter than 2 bytes is -1). */
  replies: Buffer[];
  /** Time from sending the valid query to its answer. */
  validMs: number;
}

export const VALID_NAME = 'ads.example.org';
export const VALID_ANSWER = '0.0.0.0';

export class UdpExchanger {
  private waitingValid: { id: number; resolve: (m: Buffer) => void } | null = null;
  private readonly replies = new Map<number, Buffer[]>();
  private replyWaiter: { id: number; resolve: () => void } | null = null;
  /** Replies that match no hostile packet sent so far: must stay empty. */
  readonly strays: Buffer[] = [];
  private readonly sentIds = new Set<number>();

  private constructor(
    private readonly socket: Socket,
    private readonly host: string,
    private readonly port: number,
  ) {
    socket.on('message', (m: Buffer) => {
      const id = m.length >= 2 ? m.readUInt16BE(0) : -1;
      if (this.waitingValid && id === this.waitingValid.id) {
        const w = this.waitingValid;
        this.waitingValid = null;
        return w.resolve(m);
      }
      if (!this.sentIds.has(id)) return void this.strays.push(m);
      const list = this.replies.get(id) ?? [];
      list.push(m);
      this.replies.set(id, list);
      if (this.replyWaiter?.id === id) this.replyWaiter.resolve();
    });
  }

  static async open(host: string, port: number): Promise<UdpExchanger> {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    return new UdpExchanger(socket, host, port);
  }

  /**
   * Sends `hostile`, then the valid query; `waitForReply` also waits (up to 2 s) for a reply to the
   * hostile packet, for packets answered after an upstream round trip.
   */
  async step(hostile: Buffer, waitForReply = false): Promise<StepResult> {
    const hid = hostile.length >= 2 ? hostile.readUInt16BE(0) : -1;
    this.sentIds.add(hid);
    this.replies.delete(hid);
    const gotReply = waitForReply ? this.waitReply(hid) : Promise.resolve();
    this.socket.send(hostile, this.port, this.host);
    // An ID no hostile packet has used, so a late reply to one of them cannot pass for the valid answer.
    let vid: number;
    do vid = Math.floor(Math.random() * 0x10000);
    while (this.sentIds.has(vid));
    const started = performance.now();
    const valid = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waitingValid = null;
        reject(new Error(`no answer to the valid query within 3 s after a hostile packet of ${hostile.length} bytes: ${hostile.subarray(0, 64).toString('hex')}`));
      }, 3000);
      this.waitingValid = {
        id: vid,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      this.socket.send(makeQuery(VALID_NAME, 'A', { id: vid }), this.port, this.host);
    });
    const validMs = performance.now() - started;
    const answer = addressesOf(valid);
    if (answer.length !== 1 || answer[0] !== VALID_ANSWER) throw new Error(`the valid query after a hostile packet got ${JSON.stringify(answer)}, expected ${VALID_ANSWER}`);
    await gotReply;
    return { replies: this.replies.get(hid) ?? [], validMs };
  }

  private waitReply(id: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replyWaiter = null;
        reject(new Error(`no reply to the hostile packet with ID ${id} within 2 s`));
      }, 2000);
      this.replyWaiter = {
        id,
        resolve: () => {
          clearTimeout(timer);
          this.replyWaiter = null;
          resolve();
        },
      };
    });
  }

  close(): void {
    this.socket.close();
  }
}
