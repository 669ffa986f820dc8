// How V8 trades memory for speed in the serving process. By default V8 lets its old generation
// grow to several times what is live before collecting: after a flood of never-seen names a
// server with 35 MB of live objects sits at 250+ MB resident, for good. --optimize-for-size makes
// V8 collect sooner and keep the heap near its live size (measured with the 1M table and the
// query log off: 124-138 MiB after the benchmark instead of 261-283 MiB; blocked and cached
// answers cost about the same, forwarded ones 15-40 % more CPU). V8 reads the flag at every
// heap-growing decision, so setting it at run time takes effect; it is set once the listeners
// are up, so start-up runs at full speed.
import { setFlagsFromString } from 'node:v8';

export type HeapMode = 'small' | 'speed';

let applied: HeapMode = 'speed';

export function applyHeapMode(mode: HeapMode): void {
  if (mode === applied) return;
  setFlagsFromString(mode === 'small' ? '--optimize-for-size' : '--no-optimize-for-size');
  applied = mode;
}

/** The mode this process runs in now (status and tests). */
export function heapMode(): HeapMode {
  return applied;
}
