/**
 * Runs a call and reports how long it took and how much the JS heap (and external memory) grew
 * meanwhile: the "within a time and a heap budget" of the hostile-file tests and the fuzz suite.
 * Collections are forced around the call when `collect` is set (tests that measure one reproducer),
 * not in the fuzz loop (a collection per case would cost more than the cases).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const used = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

export interface Measured<T> {
  /** The call's value, or what it threw. */
  value?: T;
  error?: unknown;
  ms: number;
  /** Heap + external bytes after the call minus before it (collected first when `collect`). */
  heapGrowth: number;
}

export async function measure<T>(call: () => Promise<T> | T, collect = false): Promise<Measured<T>> {
  if (collect) gc();
  const before = used();
  const started = performance.now();
  let out: Omit<Measured<T>, 'ms' | 'heapGrowth'>;
  try {
    out = { value: await call() };
  } catch (error) {
    out = { error };
  }
  const ms = performance.now() - started;
  const heapGrowth = used() - before;
  return { ...out, ms, heapGrowth };
}

export const MiB = 1024 * 1024;
