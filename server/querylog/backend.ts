// Where the store runs. From dist/ (the CLI, the Docker image) it runs in a worker thread: SQLite
// work, however long, never holds the thread that answers DNS, and uses another core. From the
// TypeScript sources (tests in-process) worker threads cannot load .ts files, so the store runs
// inline, each call deferred to a later turn of the event loop. Both speak the same interface.
import { Worker } from 'node:worker_threads';
import { VendorCatalog } from '../../common/vendors.js';
import { QueryLogStore, type StoreOptions } from './store.js';
import type { Batch, MaintainResult, ReadArgs, ReadMethod, ReadResult, WriteResult } from './types.js';

export interface WriterBackend {
  readonly kind: 'worker' | 'inline';
  /** Set when an existing log was moved aside at open: where to, and why. */
  readonly setAside: SetAside | null;
  write(batch: Batch): Promise<WriteResult>;
  maintain(): Promise<MaintainResult>;
  read<M extends ReadMethod>(method: M, args: ReadArgs<M>): Promise<ReadResult<M>>;
  close(): Promise<void>;
}

export type StoreConfig = Omit<StoreOptions, 'catalog'>;

type RequestBody = { op: 'write'; batch: Batch } | { op: 'maintain' } | { op: 'read'; method: ReadMethod; args: unknown } | { op: 'close' };
export type WorkerRequest = RequestBody & { seq: number };

/** `code`: the error's code (SQLITE_FULL, SQLITE_READONLY…) so the DNS thread can say what went wrong. */
export type WorkerReply = { seq: number; ok: true; result: unknown } | { seq: number; ok: false; error: string; code?: string };
export type SetAside = { path: string; reason: string };
export type WorkerHello = { hello: true; ok: true; setAside: SetAside | null } | { hello: true; ok: false; error: string; code?: string };

export function inlineBackend(config: StoreConfig, catalog: VendorCatalog): WriterBackend {
  const store = QueryLogStore.open({ ...config, catalog });
  let closed = false;
  const later = <T>(fn: () => T): Promise<T> =>
    new Promise((resolve, reject) =>
      setImmediate(() => {
        if (closed) return reject(new Error('the query log is closed'));
        try {
          resolve(fn());
        } catch (err) {
          reject(err);
        }
      }),
    );
  return {
    kind: 'inline',
    setAside: store.setAside,
    write: (batch) => later(() => store.write(batch)),
    maintain: () => later(() => store.maintain()),
    read: <M extends ReadMethod>(method: M, args: ReadArgs<M>) => later(() => callRead(store, method, args)),
    close: async () => {
      if (closed) return;
      closed = true;
      store.close();
    },
  };
}

/** Dispatch a read by name; the method set is ReadApi's, checked at compile time. */
export function callRead<M extends ReadMethod>(store: QueryLogStore, method: M, args: ReadArgs<M>): ReadResult<M> {
  const fn = store[method] as (a: ReadArgs<M>) => ReadResult<M>;
  if (typeof fn !== 'function') throw new Error(`no such query-log read: ${String(method)}`);
  return fn.call(store, args);
}

/** Starts the writer thread and waits until it has opened the store (or says why it could not). */
export function workerBackend(config: StoreConfig, workerFile: string): Promise<WriterBackend> {
  const worker = new Worker(workerFile, { workerData: config, resourceLimits: { maxYoungGenerationSizeMb: 8 } });
  worker.unref();
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let seq = 0;
  let dead: Error | null = null;
  const failAll = (err: Error) => {
    dead ??= err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };

  return new Promise((resolveOpen, rejectOpen) => {
    let opened = false;
    worker.on('message', (m: WorkerReply | WorkerHello) => {
      if ('hello' in m) {
        opened = true;
        if (!m.ok) {
          void worker.terminate();
          return rejectOpen(Object.assign(new Error(m.error), { code: m.code }));
        }
        return resolveOpen(backend(m.setAside));
      }
      const p = pending.get(m.seq);
      if (!p) return;
      pending.delete(m.seq);
      if (m.ok) p.resolve(m.result);
      else p.reject(Object.assign(new Error(m.error), { code: m.code }));
    });
    worker.on('error', (err) => {
      failAll(new Error(`query-log writer thread failed: ${err.message}`));
      if (!opened) rejectOpen(err);
    });
    worker.on('exit', (code) => {
      failAll(new Error(`query-log writer thread exited (${code})`));
      if (!opened) rejectOpen(new Error(`query-log writer thread exited (${code}) before opening the log`));
    });
  });

  function send<T>(req: RequestBody, transfer: ArrayBuffer[] = []): Promise<T> {
    if (dead) return Promise.reject(dead);
    const id = ++seq;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ ...req, seq: id }, transfer);
    });
  }

  function backend(setAside: SetAside | null): WriterBackend {
    let closing: Promise<void> | null = null;
    return {
      kind: 'worker',
      setAside,
      write: (batch) =>
        send<WriteResult>({ op: 'write', batch }, [batch.time, batch.client, batch.name, batch.reason, batch.vendor, batch.upstream, batch.qtype, batch.flags, batch.rcode, batch.us].map((a) => a.buffer as ArrayBuffer)),
      maintain: () => send<MaintainResult>({ op: 'maintain' }),
      read: <M extends ReadMethod>(method: M, args: ReadArgs<M>) => send<ReadResult<M>>({ op: 'read', method, args }),
      close: () =>
        (closing ??= send<void>({ op: 'close' }).then(
          () => worker.terminate().then(() => undefined),
          () => worker.terminate().then(() => undefined),
        )),
    };
  }
}
