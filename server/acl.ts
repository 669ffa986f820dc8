// Which clients may use the resolver: address ranges, decided once per address and remembered,
// so the per-query cost is one Map lookup.
import { parseCidr, parseIp, type Cidr } from '../common/config.js';

const REMEMBERED = 4096;

export class ClientAcl {
  private readonly v4: Cidr[];
  private readonly v6: Cidr[];
  private readonly seen = new Map<string, boolean>();

  constructor(ranges: readonly string[]) {
    const parsed = ranges.map((r) => {
      const c = parseCidr(r);
      if (!c) throw new Error(`allow-clients: ${r} is not an address range`);
      return c;
    });
    this.v4 = parsed.filter((c) => c.bytes.length === 4);
    this.v6 = parsed.filter((c) => c.bytes.length === 16);
  }

  allows(address: string): boolean {
    const known = this.seen.get(address);
    if (known !== undefined) return known;
    const verdict = this.decide(address);
    if (this.seen.size >= REMEMBERED) this.seen.clear();
    this.seen.set(address, verdict);
    return verdict;
  }

  private decide(address: string): boolean {
    const bytes = parseIp(address);
    if (!bytes) return false;
    if (bytes.length === 16 && isV4Mapped(bytes)) return this.v4.some((c) => inRange(bytes.subarray(12), c));
    return (bytes.length === 4 ? this.v4 : this.v6).some((c) => inRange(bytes, c));
  }
}

function isV4Mapped(b: Buffer): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

function inRange(addr: Buffer, c: Cidr): boolean {
  let bits = c.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i] & mask) !== (c.bytes[i] & mask)) return false;
  }
  return true;
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}
