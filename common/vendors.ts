// The vendor catalog (lists/vendors.json): which vendor a name belongs to, by domain suffix.
// The compiler stores it on each rule; the server attributes every query with it, blocked or not,
// and guesses what a client is from the vendors it talks to. That guess only holds if a vendor
// that implies a device (a phone, a TV, an OS) claims names that only such a device contacts, so
// a company's websites, shop and apps, which any laptop reaches, have their own entries of kind
// `service`, and ACR companies, whose SDKs also run inside phone apps, are of kind `acr`.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LISTS_DIR } from './paths.js';

export const VENDOR_KINDS = ['phone', 'tv', 'device', 'os', 'service', 'acr', 'sdk', 'app'] as const;
export type VendorKind = (typeof VENDOR_KINDS)[number];

export interface Vendor {
  id: string;
  name: string;
  kind: VendorKind;
  /** What a device that talks to this vendor probably is ("Xiaomi phone"); only kinds that imply a device have it. */
  device?: string;
  suffixes: string[];
}

/**
 * How much talking to a vendor of this kind says about the client: 2 for a maker's own device
 * (phone, TV, streaming stick), 1 for an operating system (every phone also talks to Google),
 * 0 for everything any device reaches.
 */
export function deviceEvidence(kind: VendorKind): 0 | 1 | 2 {
  return kind === 'phone' || kind === 'tv' || kind === 'device' ? 2 : kind === 'os' ? 1 : 0;
}

export class VendorCatalog {
  private readonly bySuffix = new Map<string, Vendor>();
  private readonly byIdMap = new Map<string, Vendor>();
  readonly vendors: readonly Vendor[];

  constructor(vendors: Vendor[]) {
    this.vendors = vendors;
    for (const v of vendors) {
      this.byIdMap.set(v.id, v);
      for (const s of v.suffixes) if (!this.bySuffix.has(s)) this.bySuffix.set(s, v);
    }
  }

  static load(listsDir = LISTS_DIR): VendorCatalog {
    const file = join(listsDir, 'vendors.json');
    if (!existsSync(file)) return new VendorCatalog([]);
    const raw: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (!Array.isArray(raw)) throw new Error(`${file}: expected an array of vendors`);
    return new VendorCatalog(raw.map((v, i) => checkVendor(v, `${file}: vendor #${i + 1}`)));
  }

  /** The vendor whose suffix is the longest match for `name`, or null. */
  vendorOf(name: string): Vendor | null {
    let i = 0;
    for (;;) {
      const v = this.bySuffix.get(i === 0 ? name : name.slice(i));
      if (v) return v;
      const dot = name.indexOf('.', i);
      if (dot === -1) return null;
      i = dot + 1;
    }
  }

  byId(id: string): Vendor | undefined {
    return this.byIdMap.get(id);
  }
}

/** A catalog entry as read from JSON, or an error that says which entry and what is wrong. */
function checkVendor(v: unknown, where: string): Vendor {
  if (typeof v !== 'object' || v === null) throw new Error(`${where}: expected an object`);
  const o = v as Record<string, unknown>;
  if (typeof o.id !== 'string' || o.id.length === 0) throw new Error(`${where}: id must be a non-empty string`);
  const at = `${where} (${o.id})`;
  if (typeof o.name !== 'string') throw new Error(`${at}: name must be a string`);
  if (!VENDOR_KINDS.includes(o.kind as VendorKind)) throw new Error(`${at}: kind must be one of ${VENDOR_KINDS.join(', ')}, not ${String(o.kind)}`);
  const kind = o.kind as VendorKind;
  if (o.device !== undefined && typeof o.device !== 'string') throw new Error(`${at}: device must be a string`);
  if ((deviceEvidence(kind) > 0) !== (o.device !== undefined)) {
    throw new Error(`${at}: a ${kind} vendor ${deviceEvidence(kind) > 0 ? 'needs' : 'must not have'} a device description`);
  }
  if (!Array.isArray(o.suffixes) || !o.suffixes.every((s) => typeof s === 'string')) throw new Error(`${at}: suffixes must be an array of names`);
  return { id: o.id, name: o.name, kind, ...(o.device !== undefined ? { device: o.device as string } : {}), suffixes: o.suffixes as string[] };
}
