// The query-log writer thread: owns the SQLite connection, applies batches, prunes, and answers
// reads, one message at a time. Started by backend.ts with the store settings as workerData.
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { VendorCatalog } from '../../common/vendors.js';
import { callRead, type StoreConfig, type WorkerHello, type WorkerReply, type WorkerRequest } from './backend.js';
import { QueryLogStore } from './store.js';

const port = parentPort;
if (!port) throw new Error('server/querylog/worker.js runs as a worker thread only');

/** Nice value of the writer thread (19 is the lowest priority). */
const WRITER_NICE = 15;

// The log is background work: on Linux, setpriority(0) applies to the calling thread only, so
// this lowers the writer thread alone. When it competes with the DNS thread for a core (a
// single-core box, a pinned process), answers go first and a batch waits; idle cores it still
// uses in full. Refused or unsupported elsewhere: then it simply runs at normal priority.
try {
  setPriority(WRITER_NICE);
} catch {
  // not allowed here
}

let store: QueryLogStore | null = null;
try {
  store = QueryLogStore.open({ ...(workerData as StoreConfig), catalog: VendorCatalog.load() });
  port.postMessage({ hello: true, ok: true, setAside: store.setAside } satisfies WorkerHello);
} catch (err) {
  port.postMessage({ hello: true, ok: false, error: (err as Error).message, code: (err as { code?: string }).code } satisfies WorkerHello);
}

port.on('message', (req: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    if (!store) throw new Error('the query log could not be opened');
    switch (req.op) {
      case 'write':
        reply = { seq: req.seq, ok: true, result: store.write(req.batch) };
        break;
      case 'maintain':
        reply = { seq: req.seq, ok: true, result: store.maintain() };
        break;
      case 'read':
        reply = { seq: req.seq, ok: true, result: callRead(store, req.method, req.args as never) };
        break;
      case 'close':
        store.close();
        store = null;
        reply = { seq: req.seq, ok: true, result: null };
        break;
    }
  } catch (err) {
    reply = { seq: req.seq, ok: false, error: (err as Error).message, code: (err as { code?: string }).code };
  }
  port.postMessage(reply);
});
