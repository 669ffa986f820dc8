// The user's own records (config `local-records`): they beat every blocklist and every built-in
// rule for LAN names, so a household can name its NAS (`nas.lan`, its private PTR) or pin a name
// without a list ever overriding it. A name we hold records for is ours: a type we hold nothing of
// gets NODATA with an SOA, never a trip upstream.
import { parseIp } from '../../common/config.js';
import { normaliseName } from '../../common/names.js';
import type { Answer, Handler, Query, Stage } from '../pipeline/types.js';
import { isPromise } from '../pipeline/types.js';
import { EDNS_UDP_SIZE, RCODE, TYPE } from '../wire/constants.js';
import { buildQuery, inspectResponse, readRecords } from '../wire/message.js';
import { parseQuery } from '../wire/query.js';
import { buildRcode, buildRecords, encodeName, soaRecord, type Rr } from '../wire/response.js';
import { ownSoa } from './soa.js';

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
    let stored = value;
    if (t === 'CNAME' || t === 'PTR') {
      // Checked here so a bad target stops start-up instead of failing every query for the name.
      const target = normaliseName(value);
      const usable = target.ok || target.reason === 'single-label' || target.reason === 'public-suffix' || target.reason === 'localhost';
      if (!usable) return void problems.push(`${where}.value = ${JSON.stringify(value)}: expected a host name such as nas.lan`);
      stored = target.ok ? target.name : value.toLowerCase().replace(/\.$/, '');
    }
    if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0)) return void problems.push(`${where}.ttl: expected whole seconds`);
    const lower = typeof name === 'string' ? name.toLowerCase().replace(/\.$/, '') : '';
    records.push({ name: n.ok ? n.name : lower, type: t, value: stored, ttl: ttl as number | undefined });
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

/** Longest chain of local CNAMEs followed before giving up (a loop in the user's records). */
const MAX_LOCAL_HOPS = 8;

export function localStage(records: readonly LocalRecord[]): Stage {
  const byName = new Map<string, LocalRecord[]>();
  for (const r of records) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
  // RDATA encoded once, at start-up.
  const rdata = new Map<LocalRecord, Buffer>(records.map((r) => [r, rdataOf(r)]));
  const rr = (r: LocalRecord, owner?: string): Rr => ({ name: owner, type: TYPE_CODES[r.type], ttl: r.ttl ?? DEFAULT_TTL, rdata: rdata.get(r)! });
  // NODATA for a local name: the SOA lets clients cache it, for no longer than the name's records live.
  const soas = new Map<string, Rr>();
  for (const [name, own] of byName) soas.set(name, soaRecord(ownSoa(name, Math.min(...own.map((r) => r.ttl ?? DEFAULT_TTL)))));

  return (next: Handler) => {
    if (byName.size === 0) return next;
    return (query: Query) => {
      const own = byName.get(query.q.name);
      if (!own) return next(query);
      const qtype = query.q.qtype;
      const reason = `local record ${query.q.name}`;
      const answers: Rr[] = [];
      let name = query.q.name;
      let records = own;
      // Follow local CNAMEs (RFC 1034 §3.6.2: the chain, then the target's records of the asked type).
      for (let hop = 0; ; hop++) {
        const cname = qtype === TYPE.CNAME ? undefined : records.find((r) => r.type === 'CNAME');
        if (!cname) break;
        answers.push(rr(cname, hop === 0 ? undefined : name));
        name = cname.value.toLowerCase().replace(/\.$/, '');
        const target = byName.get(name);
        if (!target) return resolveTarget(query, name, answers, next);
        if (hop + 1 >= MAX_LOCAL_HOPS) {
          return { wire: buildRcode(query.msg, query.q, RCODE.SERVFAIL), outcome: 'servfail', reason: `${reason}: CNAME chain longer than ${MAX_LOCAL_HOPS}`, rcode: RCODE.SERVFAIL };
        }
        records = target;
      }
      for (const r of records) if (TYPE_CODES[r.type] === qtype) answers.push(rr(r, name === query.q.name ? undefined : name));
      const hasData = answers.length > 0 && answers[answers.length - 1].type === qtype;
      const wire = hasData
        ? buildRecords(query.msg, query.q, answers)
        : buildRecords(query.msg, query.q, answers, { authority: [soas.get(name)!] });
      return { wire, outcome: 'local', reason, rcode: RCODE.NOERROR };
    };
  };
}

/**
 * A local CNAME to a name we hold no records for: the rest of the chain is resolved by the stages
 * after this one, as for any client query (so a local CNAME to a blocked name is blocked, and one
 * to a public name is forwarded and cached), and the client gets our CNAMEs followed by that
 * answer's records, as from a real resolver.
 */
function resolveTarget(query: Query, target: string, cnames: Rr[], next: Handler): Answer | Promise<Answer> {
  const q = query.q;
  let msg: Buffer;
  try {
    msg = buildQuery(q.id, target, q.qtype, q.qclass, { rd: q.rd, cd: q.cd, dnssecOk: q.edns?.dnssecOk ?? false, udpSize: q.edns ? EDNS_UDP_SIZE : 0 });
  } catch (err) {
    throw new Error(`local CNAME ${q.name} → ${target}: ${(err as Error).message}`);
  }
  const parsed = parseQuery(msg);
  if (!parsed.ok) throw new Error(`local CNAME ${q.name} → ${target}: the target query does not parse (${parsed.reason})`);
  const sub: Query = { msg, q: parsed.query, client: query.client, protocol: query.protocol, receivedAt: query.receivedAt };
  const splice = (a: Answer): Answer => spliceTarget(query, target, cnames, a);
  const result = next(sub);
  return isPromise(result) ? result.then(splice) : splice(result);
}

function spliceTarget(query: Query, target: string, cnames: Rr[], a: Answer): Answer {
  const info = inspectResponse(a.wire);
  const parts = info && readRecords(a.wire, info);
  if (!info || !parts) throw new Error(`local CNAME ${query.q.name} → ${target}: unreadable answer for the target (${a.reason})`);
  const ede = info.ede ?? undefined;
  const rcode = info.rcode;
  const reason = `local CNAME ${query.q.name} → ${target}: ${a.reason}`;
  const wire =
    rcode === RCODE.NOERROR || rcode === RCODE.NXDOMAIN
      ? buildRecords(query.msg, query.q, [...cnames, ...parts.answers], { rcode, authority: parts.authority, ede })
      : buildRcode(query.msg, query.q, rcode, { ede });
  return { wire, outcome: a.outcome, reason, rcode, upstream: a.upstream, vendor: a.vendor };
}
