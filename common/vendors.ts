// The vendor catalog (lists/vendors.json): which vendor a name belongs to, by domain suffix.
// The compiler stores it on each rule; the server attributes every query with it, blocked or not.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LISTS_DIR } from './paths.js';

export interface Vendor {
  id: string;
  name: string;
  kind: string;
  /** What a device that talks to this vendor probably is ("Xiaomi phone"). */
  device?: string;
  suffixes: string[];
}

export class VendorCatalog {
  private readonly bySuffix = new Map<string, Vendor>();
  readonly vendors: readonly Vendor[];

  constructor(vendors: Vendor[]) {
    this.vendors = vendors;
    for (const v of vendors) for (const s of v.suffixes) if (!this.bySuffix.has(s)) this.bySuffix.set(s, v);
  }

  static load(listsDir = LISTS_DIR): VendorCatalog {
    const file = join(listsDir, 'vendors.json');
    if (!existsSync(file)) return new VendorCatalog([]);
    return new VendorCatalog(JSON.parse(readFileSync(file, 'utf8')) as Vendor[]);
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
    return this.vendors.find((v) => v.id === id);
  }
}
