// One server process and its fake upstream for a describe block: started before its tests, and
// stopped after them with a check that SIGTERM still ends it cleanly after whatever they did.
import { afterAll, beforeAll, expect } from 'vitest';
import { startChildServer, type ChildServer } from '../helpers/child-server.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';

export interface Fixture {
  readonly srv: ChildServer;
  readonly upstream: FakeUpstream;
}

export function serverFixture(lists: Record<string, string>, flags: string[] = ['--rate-limit', '0']): Fixture {
  const f: { srv?: ChildServer; upstream?: FakeUpstream } = {};
  beforeAll(async () => {
    f.upstream = await startFakeUpstream();
    f.srv = await startChildServer({ lists, upstreamPort: f.upstream.port, flags });
  });
  afterAll(async () => {
    const code = await f.srv?.stop();
    await f.upstream?.stop();
    expect(code, 'the server exits cleanly on SIGTERM after the attacks').toBe(0);
  });
  return {
    get srv() {
      if (!f.srv) throw new Error('the server fixture is used before its beforeAll ran');
      return f.srv;
    },
    get upstream() {
      if (!f.upstream) throw new Error('the server fixture is used before its beforeAll ran');
      return f.upstream;
    },
  };
}
