// Block: the compiled table decides (allow beats block, the user's own entries beat lists). Sits
// before the cache so a newly blocked name is never served from cache, and inspects the CNAME
// chain of answers coming back so a tracker hidden behind a first-party CNAME is blocked too.
import type { BlockDecision } from '../blocklist.js';
import type { Answer, Handler, Query, Stage } from '../pipeline/types.js';
import { isPromise } from '../pipeline/types.js';
import type { Sinkhole } from '../sinkhole.js';

/** What the block stage asks: the decision for a name right now (null: no table loaded). */
export type Decider = (name: string) => BlockDecision | null;

export function blockStage(decide: Decider, sinkhole: Sinkhole): Stage {
  return (next: Handler) => (query: Query) => {
    const d = decide(query.q.name);
    if (d && d.action === 'block') return blocked(query, sinkhole, d.reason, d.vendor);
    const result = next(query);
    if (d && d.action === 'allow') {
      // A name someone allowed on purpose is answered as the upstream resolves it: re-blocking it
      // for its CNAME target would undo the allow (AdGuard Home and Blocky behave the same).
      return isPromise(result) ? result.then((a) => allowed(a, d)) : allowed(result, d);
    }
    return isPromise(result) ? result.then((a) => inspectCnames(a, query, decide, sinkhole)) : inspectCnames(result, query, decide, sinkhole);
  };
}

/** Marks an answer an allow rule let through (its hits are counted per rule and list). */
function allowed(answer: Answer, allow: BlockDecision): Answer {
  if (answer.outcome !== 'blocked') answer.allowedBy = allow;
  return answer;
}

function blocked(query: Query, sinkhole: Sinkhole, reason: string, vendor: string | null): Answer {
  const wire = sinkhole.answer(query.msg, query.q, reason);
  return { wire, outcome: 'blocked', reason, rcode: wire[3] & 0x0f, vendor };
}

function inspectCnames(answer: Answer, query: Query, decide: Decider, sinkhole: Sinkhole): Answer {
  const cnames = answer.cnames;
  if (!cnames || cnames.length === 0 || answer.outcome === 'blocked') return answer;
  for (const target of cnames) {
    const d = decide(target);
    if (d && d.action === 'block') return blocked(query, sinkhole, `CNAME ${target}: ${d.reason}`, d.vendor);
  }
  return answer;
}
