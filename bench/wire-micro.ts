// Micro-benchmark of the hot-path wire layer against dns2 for the same query: how long parsing a
// request and building a sinkhole (or error) answer takes per operation.
// Run: npx tsc -p tsconfig.json && node dist/bench/wire-micro.js
import { pathToFileURL } from 'node:url';
import { Packet } from 'dns2';
import { CLASS, EDE, RCODE, TYPE } from '../server/wire/constants.js';
import { parseQuery } from '../server/wire/query.js';
import { buildAddresses, buildRcode } from '../server/wire/response.js';
import { inspectResponse } from '../server/wire/message.js';

interface Row {
  name: string;
  nsPerOp: number;
}

// Keeps results alive so the JIT cannot drop the work being measured.
let sink = 0;

/** Median ns/op over `rounds` timed rounds of `iterations` calls each, after a warm-up round. */
function measure(name: string, iterations: number, fn: () => number, rounds = 5): Row {
  for (let i = 0; i < Math.min(iterations, 20_000); i++) sink += fn();
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink += fn();
    samples.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  samples.sort((a, b) => a - b);
  return { name, nsPerOp: samples[Math.floor(samples.length / 2)] };
}

function dns2Request(): Buffer {
  const p = new Packet();
  p.header.id = 0x4d2;
  p.header.rd = 1;
  p.questions.push({ name: 'Telemetry.Vendor.Example.com', type: TYPE.A, class: CLASS.IN } as Packet['questions'][number]);
  p.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: 1232, doFlag: false }));
  return p.toBuffer();
}

/** Time both implementations on the same EDNS query and print a table. */
export function main(): void {
  const msg = dns2Request();
  const zero4 = [Buffer.alloc(4)];
  const ede = { ede: { code: EDE.Blocked, text: 'hagezi-native-xiaomi: ||tracking.example.com^' } };

  const rows: Row[] = [];
  rows.push(
    measure('ours: parseQuery', 500_000, () => {
      const r = parseQuery(msg);
      return r.ok ? r.query.questionEnd : 0;
    }),
  );
  rows.push(
    measure('ours: parseQuery + buildAddresses (0.0.0.0)', 500_000, () => {
      const r = parseQuery(msg);
      return r.ok ? buildAddresses(msg, r.query, 300, zero4).length : 0;
    }),
  );
  rows.push(
    measure('ours: parseQuery + buildAddresses + EDE text', 500_000, () => {
      const r = parseQuery(msg);
      return r.ok ? buildAddresses(msg, r.query, 300, zero4, ede).length : 0;
    }),
  );
  rows.push(
    measure('ours: parseQuery + buildRcode (REFUSED)', 500_000, () => {
      const r = parseQuery(msg);
      return r.ok ? buildRcode(msg, r.query, RCODE.REFUSED).length : 0;
    }),
  );
  rows.push(measure('dns2: Packet.parse', 5_000, () => Packet.parse(msg).questions.length));
  rows.push(
    measure('dns2: parse + A answer + toBuffer', 5_000, () => {
      const req = Packet.parse(msg);
      const res = Packet.createResponseFromRequest(req);
      res.header.ra = 1;
      res.answers.push({ name: req.questions[0].name, type: TYPE.A, class: CLASS.IN, ttl: 300, address: '0.0.0.0' } as Packet['answers'][number]);
      res.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: 1232 }));
      return res.toBuffer().length;
    }),
  );
  rows.push(
    measure('dns2: parse + REFUSED + toBuffer', 5_000, () => {
      const req = Packet.parse(msg);
      return Packet.createErrorResponseFromRequest(req, RCODE.REFUSED).toBuffer().length;
    }),
  );

  // Upstream side: a CNAME + two A answer with OPT, as the forward stage and cache see it.
  const upstream = (() => {
    const p = Packet.createResponseFromRequest(Packet.parse(msg));
    p.header.ra = 1;
    const name = p.questions[0].name;
    p.answers.push({ name, type: TYPE.CNAME, class: CLASS.IN, ttl: 300, domain: 'edge.cdn.example.net' } as Packet['answers'][number]);
    p.answers.push({ name: 'edge.cdn.example.net', type: TYPE.A, class: CLASS.IN, ttl: 60, address: '192.0.2.1' } as Packet['answers'][number]);
    p.answers.push({ name: 'edge.cdn.example.net', type: TYPE.A, class: CLASS.IN, ttl: 60, address: '192.0.2.2' } as Packet['answers'][number]);
    p.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: 1232 }));
    return p.toBuffer();
  })();
  rows.push(measure('ours: inspectResponse (CNAME + 2 A, OPT)', 500_000, () => inspectResponse(upstream)?.ttlOffsets.length ?? 0));
  rows.push(measure('dns2: Packet.parse (same response)', 5_000, () => Packet.parse(upstream).answers.length));

  const dns2Answer = rows.find((r) => r.name.startsWith('dns2: parse + A'))?.nsPerOp ?? NaN;
  const dns2Refused = rows.find((r) => r.name.startsWith('dns2: parse + REFUSED'))?.nsPerOp ?? NaN;
  const dns2Parse = rows.find((r) => r.name === 'dns2: Packet.parse')?.nsPerOp ?? NaN;
  const dns2Inspect = rows.find((r) => r.name.startsWith('dns2: Packet.parse (same'))?.nsPerOp ?? NaN;
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(`wire micro-benchmark (Node ${process.version}, query ${msg.length} octets with EDNS)`);
  console.log(`${'case'.padEnd(width)}  ${'µs/op'.padStart(9)}  ${'ops/s'.padStart(11)}  vs dns2`);
  for (const r of rows) {
    const ref = r.name.includes('REFUSED') ? dns2Refused : r.name.includes('inspect') ? dns2Inspect : r.name === 'ours: parseQuery' ? dns2Parse : dns2Answer;
    const speedup = r.name.startsWith('ours') ? `${(ref / r.nsPerOp).toFixed(1)}× faster` : '';
    console.log(`${r.name.padEnd(width)}  ${(r.nsPerOp / 1000).toFixed(3).padStart(9)}  ${Math.round(1e9 / r.nsPerOp).toLocaleString('en-US').padStart(11)}  ${speedup}`);
  }
  if (sink === -1) console.log('unreachable');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
