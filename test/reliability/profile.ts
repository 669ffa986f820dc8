// How hard the reliability suite pushes: the CI profile (bounded, about a minute) or the soak
// profile (`npm run soak`: a million fuzz packets, a hundred swaps, minutes of upstream churn),
// chosen by RELIABILITY_PROFILE. In soak mode RELIABILITY_DURATION_MS bounds the whole run: each
// phase gets a share of it and stops early, reporting what it actually did, when its share is used.

export interface Profile {
  name: 'ci' | 'soak';
  seed: number;
  fuzzPackets: number;
  /**
   * Fuzz datagrams a second. 10,000 is a thousand times a household's load, and leaves the server
   * (about a third of a core at this rate) and the fuzzer (a sixth) room on a shared 2-core
   * machine: at 20,000 the flood's own processes took 0.8 of the 2 cores and measured the machine.
   */
  fuzzRate: number;
  swaps: number;
  /** How long upstream behaviour keeps changing under a steady client. */
  churnMs: number;
  floodQueries: number;
  /** Wall-clock share of a phase (ms); in CI a generous bound, in soak its part of the budget. */
  phaseMs(phase: Phase): number;
  /** vitest timeout for a test that runs one phase. */
  timeout(phase: Phase): number;
}

export type Phase = 'fuzz' | 'swaps' | 'churn' | 'flood';

const SOAK_SHARE: Record<Phase, number> = { fuzz: 0.2, swaps: 0.25, churn: 0.4, flood: 0.1 };
const CI_MS: Record<Phase, number> = { fuzz: 30_000, swaps: 40_000, churn: 20_000, flood: 20_000 };
/** The rest of a test around its phase: starting servers, checks, stopping. */
const SLACK_MS = 30_000;

function profileFrom(env: NodeJS.ProcessEnv): Profile {
  const seed = Number(env.RELIABILITY_SEED ?? 20261125);
  const fuzzRate = Number(env.RELIABILITY_FUZZ_RATE ?? 10_000);
  if (env.RELIABILITY_PROFILE === 'soak') {
    const budget = Number(env.RELIABILITY_DURATION_MS ?? 600_000);
    if (!(budget > 0)) throw new Error(`RELIABILITY_DURATION_MS must be a positive number of milliseconds, got ${JSON.stringify(env.RELIABILITY_DURATION_MS)}`);
    const phaseMs = (p: Phase) => Math.round(budget * SOAK_SHARE[p]);
    return { name: 'soak', seed, fuzzPackets: 1_000_000, fuzzRate, swaps: 100, churnMs: phaseMs('churn'), floodQueries: 1_000_000, phaseMs, timeout: (p) => phaseMs(p) + SLACK_MS };
  }
  return { name: 'ci', seed, fuzzPackets: 100_000, fuzzRate, swaps: 10, churnMs: 4_000, floodQueries: 60_000, phaseMs: (p) => CI_MS[p], timeout: (p) => CI_MS[p] + SLACK_MS };
}

export const PROFILE: Profile = profileFrom(process.env);
