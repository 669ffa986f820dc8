// A Bloom filter over rule names. The compiler builds it while writing the table and stores the
// bits in the database; the server loads them in one read, so most names (the allowed ones) are
// decided without a SQLite lookup and start-up needs no scan of the table.

const BITS_PER_NAME = 10; // with 7 hashes: about 0.8 % false positives
/** Hashes (probes) per name of every filter the compiler writes. */
export const BLOOM_HASHES = 7;

export class BloomFilter {
  readonly bits: Uint8Array;
  readonly hashes: number;
  private readonly size: number;
  /** size - 1 when size is a power of two (what the compiler writes): a mask instead of a division. */
  private readonly mask: number;

  constructor(bits: Uint8Array, hashes: number) {
    if (bits.length === 0) throw new Error('bloom filter needs at least one byte');
    this.bits = bits;
    this.hashes = hashes;
    this.size = bits.length * 8;
    this.mask = this.size <= 2 ** 31 && (this.size & (this.size - 1)) === 0 ? this.size - 1 : -1;
  }

  /** Bytes of a filter for `count` names (forCount's size), without allocating one. */
  static bytesFor(count: number): number {
    return Math.max(64, Math.ceil((Math.max(count, 1) * BITS_PER_NAME) / 8));
  }

  static forCount(count: number): BloomFilter {
    return new BloomFilter(new Uint8Array(BloomFilter.bytesFor(count)), BLOOM_HASHES);
  }

  add(name: string): void {
    const h1 = fnv1a(name);
    const h2 = mix(h1) | 1;
    for (let i = 0; i < this.hashes; i++) {
      const bit = this.bitAt(h1, h2, i);
      this.bits[bit >>> 3] |= 1 << (bit & 7);
    }
  }

  mayContain(name: string): boolean {
    const h1 = fnv1a(name);
    const h2 = mix(h1) | 1;
    for (let i = 0; i < this.hashes; i++) {
      const bit = this.bitAt(h1, h2, i);
      if ((this.bits[bit >>> 3] & (1 << (bit & 7))) === 0) return false;
    }
    return true;
  }

  /** The i-th probe (double hashing); the mask and the remainder give the same bit. */
  private bitAt(h1: number, h2: number, i: number): number {
    const h = (h1 + Math.imul(i, h2)) >>> 0;
    return this.mask >= 0 ? h & this.mask : h % this.size;
  }
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's finaliser: a second hash derived from the first, independent enough for double hashing. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
