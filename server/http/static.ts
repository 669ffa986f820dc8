// The dashboard's files (server/dashboard/), read once at start and served from memory with a
// strict Content-Security-Policy: scripts only from this server, no inline script, no inline
// event handlers — a second wall behind the page's own rule of never writing data as HTML.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { PACKAGE_ROOT } from '../../common/paths.js';

export const DASHBOARD_DIR = join(PACKAGE_ROOT, 'server', 'dashboard');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export interface Asset {
  type: string;
  body: Buffer;
}

/** URL path → file, for every file of the dashboard folder ('/' is index.html). Empty when the folder is missing. */
export function loadDashboard(dir = DASHBOARD_DIR): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  for (const file of readdirSync(dir)) {
    const type = TYPES[extname(file)];
    if (!type) continue;
    const asset = { type, body: readFileSync(join(dir, file)) };
    assets.set(`/${file}`, asset);
    if (file === 'index.html') assets.set('/', asset);
  }
  return assets;
}
