// The answer a blocked name gets, by block mode and query type. Blocked names get NODATA for every
// type that is not an address (HTTPS/SVCB included, so a browser finds no alternative endpoint).
import { parseIp } from '../common/config.js';
import type { ParsedQuery } from './wire/query.js';
import { buildAddresses, buildNegative, buildRcode, type ResponseOptions, type SoaTemplate } from './wire/response.js';
import { EDE, RCODE, TYPE } from './wire/constants.js';

export type BlockMode = 'null' | 'nxdomain' | 'nodata' | 'refused' | 'custom';

export interface SinkholeOptions {
  mode: BlockMode;
  ttlSeconds: number;
  /** For mode custom. */
  customIps: readonly string[];
}

export class Sinkhole {
  private readonly v4: Buffer[];
  private readonly v6: Buffer[];
  private readonly soa: SoaTemplate;

  constructor(private readonly opts: SinkholeOptions) {
    const custom = opts.customIps.map((ip) => parseIp(ip)).filter((b): b is Buffer => b !== null);
    this.v4 = opts.mode === 'custom' ? custom.filter((b) => b.length === 4) : [Buffer.alloc(4)];
    this.v6 = opts.mode === 'custom' ? custom.filter((b) => b.length === 16) : [Buffer.alloc(16)];
    // Negative answers carry an SOA so clients cache them for the block TTL (RFC 2308).
    this.soa = {
      zone: '',
      ttl: opts.ttlSeconds,
      mname: 'hushdns.blocked',
      rname: 'hostmaster.hushdns.blocked',
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: opts.ttlSeconds,
    };
  }

  answer(msg: Buffer, q: ParsedQuery, reason: string): Buffer {
    const opts: ResponseOptions = { ede: { code: EDE.Blocked, text: reason.length > 200 ? `${reason.slice(0, 197)}...` : reason } };
    switch (this.opts.mode) {
      case 'nxdomain':
        return buildNegative(msg, q, RCODE.NXDOMAIN, this.soaFor(q), opts);
      case 'nodata':
        return buildNegative(msg, q, RCODE.NOERROR, this.soaFor(q), opts);
      case 'refused':
        return buildRcode(msg, q, RCODE.REFUSED, opts);
      default: {
        const addrs = q.qtype === TYPE.A ? this.v4 : q.qtype === TYPE.AAAA ? this.v6 : null;
        if (addrs && addrs.length > 0) return buildAddresses(msg, q, this.opts.ttlSeconds, addrs, opts);
        return buildNegative(msg, q, RCODE.NOERROR, this.soaFor(q), opts);
      }
    }
  }

  private soaFor(q: ParsedQuery): SoaTemplate {
    return { ...this.soa, zone: q.name };
  }
}
