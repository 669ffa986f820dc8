// The user's own records (config `local-records`): they beat every blocklist, so a household can
// name its NAS or pin a name without a list ever overriding it.
import { parseIp } from '../../common/config.js';
import { normaliseName } from '../../common/names.js';
import type { Handler, Query, Stage } from '../pipeline/types.js';
import { RCODE, TYPE } from '../wire/constants.js';
import { buildNegative, buildRecords, encodeName, type Rr } from '../wire/response.js';

export interface LocalRecord {
  name: string;
  type: 'A' | 'AAAA' | 'CNAME' | 'PTR' | 'TXT';
  value: string;
  ttl?: number;
}

const TYPE_CODES = { A: TYPE.A, AAAA: TYPE.AAAA, CNAME: TYPE.CNAME, PTR: TYPE.PTR, TXT: TYPE.TXT } as const;
const DEFAULT_TTL = 300;

/** Validates `local-records` from the config; every problem names the entry and the fix. */
export function parseLocalRecords(raw: readonly unknown[]): { records: LocalRecord[]; problems: string[] } {
  const records: LocalRecord[] = [];
  const problems: string[] = [];
  raw.forEach((r, i) => {
    const where = `local-records[${i}]`;
    if (!r || typeof r !== 'object') return void problems.push(`${where}: expected {name, type, value}`);
    const { name, type, value, ttl } = r as Record<string, unknown>;
    const n = typeof name === 'string' ? normaliseName(name) : null;
    if (!n || (!n.ok && n.reason !== 'single-label')) return void problems.push(`${where}.name = ${JSON.stringify(name)}: expected a host name such as nas.lan`);
    if (typeof type !== 'string' || !(type.toUpperCase() in TYPE_CODES)) return void problems.push(`${where}.type = ${JSON.stringify(type)}: expected A, AAAA, CNAME, PTR or TXT`);
    const t = type.toUpperCase() as LocalRecord['type'];
    if (typeof value !== 'string') return void problems.push(`${where}.value: expected text`);
    const ip = parseIp(value);
    if ((t === 'A' && ip?.length !== 4) || (t === 'AAAA' && ip?.length !== 16)) return void problems.push(`${where}.value = ${JSON.stringify(value)}: expected an IPv${t === 'A' ? 4 : 6} address`);
    if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0)) return void problems.push(`${where}.ttl: expected whole seconds`);
    const lower = typeof name === 'string' ? name.toLowerCase().replace(/\.$/, '') : '';
    records.push({ name: n.ok ? n.name : lower, type: t, value, ttl: ttl as number | undefined });
  });
  return { records, problems };
}

function rdataOf(r: LocalRecord): Buffer {
  switch (r.type) {
    case 'A':
    case 'AAAA':
      return parseIp(r.value)!;
    case 'CNAME':
    case 'PTR':
      return encodeName(r.value.toLowerCase().replace(/\.$/, ''));
    case 'TXT': {
      const chunks: Buffer[] = [];
      const bytes = Buffer.from(r.value, 'utf8');
      for (let i = 0; i < bytes.length || i === 0; i += 255) {
        const part = bytes.subarray(i, i + 255);
        chunks.push(Buffer.from([part.length]), part);
        if (bytes.length === 0) break;
      }
      return Buffer.concat(chunks);
    }
  }
}

export function localStage(records: readonly LocalRecord[]): Stage {
  const byName = new Map<string, LocalRecord[]>();
  for (const r of records) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
  return (next: Handler) => {
    if (byName.size === 0) return next;
    return (query: Query) => {
      const own = byName.get(query.q.name);
      if (!own) return next(query);
      const answers: Rr[] = [];
      const cname = own.find((r) => r.type === 'CNAME');
      const wanted = cname && query.q.qtype !== TYPE.CNAME ? [cname] : own.filter((r) => TYPE_CODES[r.type] === query.q.qtype);
      for (const r of wanted) answers.push({ type: TYPE_CODES[r.type], ttl: r.ttl ?? DEFAULT_TTL, rdata: rdataOf(r) });
      if (cname && query.q.qtype !== TYPE.CNAME) {
        const target = cname.value.toLowerCase().replace(/\.$/, '');
        for (const r of byName.get(target) ?? []) {
          if (TYPE_CODES[r.type] === query.q.qtype) answers.push({ name: target, type: TYPE_CODES[r.type], ttl: r.ttl ?? DEFAULT_TTL, rdata: rdataOf(r) });
        }
      }
      const wire = answers.length > 0 ? buildRecords(query.msg, query.q, answers) : buildNegative(query.msg, query.q, RCODE.NOERROR, null);
      return { wire, outcome: 'local', reason: `local record ${query.q.name}`, rcode: RCODE.NOERROR };
    };
  };
}
