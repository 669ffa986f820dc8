// Who a client is. A client is an IP address; its name comes from the config (`devices`, by IP or
// MAC address), else from the router's reverse DNS (PTR via --local-upstream, cached), and its MAC
// from the host's ARP table when the host can see it (host networking, not a Docker bridge). What
// it probably is ("Xiaomi phone") follows from the vendors it talks to (lists/vendors.json).
import { readFileSync } from 'node:fs';
import { parseIp } from '../common/config.js';
import type { Logger } from '../common/log.js';
import { deviceEvidence, type Vendor, type VendorCatalog } from '../common/vendors.js';
import { ClientAcl } from './acl.js';
import { CLASS, HEADER_SIZE, RCODE, TYPE } from './wire/constants.js';
import { buildQuery } from './wire/message.js';
import { takeName, walkName } from './wire/name.js';

export interface DeviceIdentity {
  address: string;
  name: string | null;
  nameFrom: 'config' | 'reverse-dns' | null;
  mac: string | null;
}

export interface DeviceKind {
  /** What the device probably is, e.g. "Xiaomi, Redmi or POCO phone, or a Xiaomi TV". */
  kind: string;
  /** The vendor it was inferred from. */
  vendor: string;
}

export type ReverseLookup = (address: string) => Promise<string | null>;

export interface DevicesOptions {
  /** IP or MAC address → name, from the config file. */
  names: Readonly<Record<string, string>>;
  catalog: VendorCatalog;
  reverse?: ReverseLookup | null;
  /** Default /proc/net/arp. */
  arpFile?: string;
  log?: Logger;
}

const ARP_FRESH_MS = 30_000;
const RDNS_OK_MS = 3_600_000;
const RDNS_MISS_MS = 600_000;
const RDNS_REMEMBERED = 4096;
/** Only addresses on this side of the router are worth asking it about (loopback: the host itself). */
const LAN = new ClientAcl(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '127.0.0.0/8', 'fc00::/7', 'fe80::/10', '::1/128']);

export class Devices {
  private readonly byIp = new Map<string, string>();
  private readonly byMac = new Map<string, string>();
  private arp = new Map<string, string>();
  private arpReadAt = 0;
  private readonly rdns = new Map<string, { name: string | null; until: number }>();
  private readonly asking = new Set<string>();

  constructor(private readonly opts: DevicesOptions) {
    for (const [key, name] of Object.entries(opts.names)) {
      const ip = ipKey(key);
      if (ip) this.byIp.set(ip, name);
      else this.byMac.set(macKey(key), name);
    }
  }

  /** Name and MAC for an address as known right now; an unknown LAN address is looked up in the background. */
  identify(address: string): DeviceIdentity {
    const mac = this.macOf(address);
    const key = ipKey(address) ?? address;
    const configured = this.byIp.get(key) ?? (mac ? this.byMac.get(mac) : undefined);
    if (configured !== undefined) return { address, name: configured, nameFrom: 'config', mac };
    const r = this.reverseName(address);
    return { address, name: r, nameFrom: r ? 'reverse-dns' : null, mac };
  }

  /**
   * The likely kind of device from the vendors it talks to (counts by vendor id), or null. A maker's
   * device vendor beats an operating system (every Android phone also talks to Google), and within
   * a tier the most queries win. Vendors whose names any device reaches (websites, shops, apps,
   * SDKs, ACR) say nothing: a laptop that shops on amazon.com is not a Fire TV.
   */
  kindOf(vendors: readonly { vendor: string; blocked: number; allowed: number }[]): DeviceKind | null {
    let best: { v: Vendor; device: string; n: number; tier: number } | null = null;
    for (const c of vendors) {
      const v = this.opts.catalog.byId(c.vendor);
      if (!v?.device) continue;
      const tier = deviceEvidence(v.kind);
      const n = c.blocked + c.allowed;
      if (tier === 0 || n <= 0) continue;
      if (!best || tier > best.tier || (tier === best.tier && n > best.n)) best = { v, device: v.device, n, tier };
    }
    return best ? { kind: best.device, vendor: best.v.id } : null;
  }

  vendor(id: string): Vendor | undefined {
    return this.opts.catalog.byId(id);
  }

  private macOf(address: string): string | null {
    const now = Date.now();
    if (now - this.arpReadAt > ARP_FRESH_MS) {
      this.arpReadAt = now;
      this.arp = readArpTable(this.opts.arpFile ?? '/proc/net/arp');
    }
    return this.arp.get(address.startsWith('::ffff:') ? address.slice(7) : address) ?? null;
  }

  private reverseName(address: string): string | null {
    const lookup = this.opts.reverse;
    if (!lookup) return null;
    const known = this.rdns.get(address);
    const now = Date.now();
    if (known && now < known.until) return known.name;
    if (!LAN.allows(address) || this.asking.has(address)) return known?.name ?? null;
    this.asking.add(address);
    lookup(address)
      .then(
        (name) => this.remember(address, name),
        (err: unknown) => {
          this.opts.log?.debug('reverse lookup of a client failed', { address, err });
          this.remember(address, null);
        },
      )
      .finally(() => this.asking.delete(address));
    return known?.name ?? null;
  }

  private remember(address: string, name: string | null): void {
    if (this.rdns.size >= RDNS_REMEMBERED) this.rdns.clear();
    this.rdns.set(address, { name, until: Date.now() + (name ? RDNS_OK_MS : RDNS_MISS_MS) });
  }
}

/** IPv4 → MAC from a /proc/net/arp-style table; incomplete entries are skipped. Missing file: empty. */
export function readArpTable(file: string): Map<string, string> {
  const out = new Map<string, string>();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4) continue;
    const [ip, , flags, mac] = cols;
    if (Number(flags) === 0 || mac === '00:00:00:00:00:00' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) continue;
    out.set(ip, mac.toLowerCase());
  }
  return out;
}

/** The reverse-lookup name of an address: 23.1.168.192.in-addr.arpa, or nibbles under ip6.arpa. */
export function ptrName(address: string): string | null {
  const b = parseIp(address);
  if (!b) return null;
  if (b.length === 4) return `${b[3]}.${b[2]}.${b[1]}.${b[0]}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) nibbles.push((b[i] & 0xf).toString(16), (b[i] >> 4).toString(16));
  return `${nibbles.join('.')}.ip6.arpa`;
}

/** Asks `exchange` (the router's upstream pool) for the PTR name of an address. */
export function reverseVia(exchange: (query: Buffer) => Promise<{ response: Buffer }>): ReverseLookup {
  return async (address) => {
    const name = ptrName(address);
    if (!name) return null;
    const query = buildQuery(Math.floor(Math.random() * 0x10000), name, TYPE.PTR, CLASS.IN, { rd: true, cd: false, dnssecOk: false, udpSize: 0 });
    const { response } = await exchange(query);
    return firstPtr(response);
  };
}

/** The first PTR target in a response's answer section, or null (any error, no record, garbage). */
export function firstPtr(msg: Buffer): string | null {
  if (msg.length < HEADER_SIZE || (msg[3] & 0x0f) !== RCODE.NOERROR) return null;
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  let pos = HEADER_SIZE;
  for (let i = 0; i < qd; i++) {
    pos = walkName(msg, pos, msg.length, false);
    if (pos < 0 || pos + 4 > msg.length) return null;
    pos += 4;
  }
  for (let i = 0; i < an; i++) {
    pos = walkName(msg, pos, msg.length, false);
    if (pos < 0 || pos + 10 > msg.length) return null;
    const type = msg.readUInt16BE(pos);
    const end = pos + 10 + msg.readUInt16BE(pos + 8);
    if (end > msg.length) return null;
    if (type === TYPE.PTR) return walkName(msg, pos + 10, end, true) < 0 ? null : takeName() || null;
    pos = end;
  }
  return null;
}

function ipKey(v: string): string | null {
  const b = parseIp(v);
  return b ? b.toString('hex') : null;
}

function macKey(v: string): string {
  return v.toLowerCase().replace(/-/g, ':');
}
