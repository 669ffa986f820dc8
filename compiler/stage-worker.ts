// The staging thread (stage.ts, ThreadStager): applies the main thread's messages to a StageTable
// in order. The first failure is kept and every later message is only acknowledged, so the main
// thread never waits on a thread that gave up; complete() then reports that failure.
import { workerData } from 'node:worker_threads';
import { IN_FLIGHT, REPLIES, StageTable, type StageReply, type StageRequest, type StageWorkerData } from './stage.js';

const data = workerData as StageWorkerData | null;
if (!data?.port) throw new Error('compiler/stage-worker.js runs as the compiler\'s staging thread only');
const { port, path, bloomBits } = data;
const state = new Int32Array(data.state);

let table: StageTable | null = null;
let failure: string | null = null;

const fail = (err: unknown, during: string): void => {
  failure ??= `${during}: ${(err as Error).message ?? String(err)}`;
};

try {
  table = StageTable.open(path, bloomBits);
} catch (err) {
  fail(err, `opening ${path}`);
}

const reply = (r: StageReply, transfer: ArrayBuffer[] = []): void => {
  port.postMessage(r, transfer);
  Atomics.add(state, REPLIES, 1);
  Atomics.notify(state, REPLIES);
};

port.on('message', (msg: StageRequest) => {
  switch (msg.op) {
    case 'rows': {
      try {
        if (failure === null && table) {
          const { names, packed } = msg;
          for (let i = 0; i < names.length; i++) table.add(names[i]!, packed[i]!);
        }
      } catch (err) {
        fail(err, 'appending entries');
      }
      Atomics.sub(state, IN_FLIGHT, 1);
      Atomics.notify(state, IN_FLIGHT);
      return;
    }
    case 'pattern':
      try {
        if (failure === null) table?.pattern(msg.kind, msg.pattern, msg.action, msg.sourceId);
      } catch (err) {
        fail(err, `staging pattern ${msg.pattern}`);
      }
      return;
    case 'savepoint':
      try {
        if (failure === null) table?.savepoint(msg.kind, msg.name);
      } catch (err) {
        fail(err, `${msg.kind} ${msg.name}`);
      }
      return;
    case 'complete': {
      let bloom: Uint8Array | null = null;
      try {
        if (failure === null && table) bloom = table.complete();
      } catch (err) {
        fail(err, 'committing the staged entries');
      }
      table?.abort();
      if (failure !== null || !bloom) reply({ ok: false, error: failure ?? 'the staging table never opened' });
      else reply({ ok: true, bloom }, [bloom.buffer as ArrayBuffer]);
      port.close();
      return;
    }
    case 'abort':
      table?.abort();
      reply({ ok: true, bloom: null });
      port.close();
      return;
  }
});
