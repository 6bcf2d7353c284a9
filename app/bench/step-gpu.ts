/**
 * The GPU time of a decode step: a timestamp once all work before the step is done and one once the
 * step is (Session.stepTimestamps → encodeSteps, which says why pass ends and not beginnings), so
 * the time between steps (the queue waiting for the CPU to submit the next one) is left out. Beside a token's wall time and the CPU a step
 * costs (step-cpu.ts) it says what holds the decode: a token much longer than its step's GPU time
 * is held by the CPU or the submission, not by the kernels. Needs the adapter's timestamp-query.
 */
import type { GpuContext } from '../gpu/context.js';
import type { Session } from '../model/session.js';

/**
 * The first `count` timestamps of `querySet` in ns (0 where none was written), read back once the
 * work submitted before is done.
 */
export async function readTimestamps(device: GPUDevice, querySet: GPUQuerySet, count: number): Promise<BigUint64Array> {
  if (count === 0) return new BigUint64Array(0);
  const resolved = device.createBuffer({ label: 'readTimestamps.resolved', size: 8 * count, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const staging = device.createBuffer({ label: 'readTimestamps.staging', size: 8 * count, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const encoder = device.createCommandEncoder({ label: 'readTimestamps' });
    encoder.resolveQuerySet(querySet, 0, count, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, staging, 0, 8 * count);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const ns = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    return ns;
  } finally {
    resolved.destroy();
    staging.destroy();
  }
}

/** Writes timestamps for the next `maxSteps` one-token steps of `session` (later steps write none). */
export function timeStepGpu(ctx: GpuContext, session: Session, maxSteps: number): { read(): Promise<number[]>; destroy(): void } {
  if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new RangeError(`timeStepGpu: maxSteps must be an integer ≥ 1, got ${maxSteps}`);
  const { device } = ctx;
  // A query set holds at most 4,096 queries (WebGPU's limit): 2,048 steps.
  const steps = Math.min(maxSteps, 2048);
  const querySet = device.createQuerySet({ label: 'timeStepGpu.queries', type: 'timestamp', count: 2 * steps });
  let written = 0;
  session.stepTimestamps = () => (written < steps ? { querySet, begin: 2 * written, end: 2 * written++ + 1 } : null);
  return {
    /** The ms each timed step took on the GPU, in order (steps taken so far; once they are done). */
    async read(): Promise<number[]> {
      session.stepTimestamps = null;
      const ns = await readTimestamps(device, querySet, 2 * written);
      return Array.from({ length: written }, (_, i) => Number((ns[2 * i + 1] as bigint) - (ns[2 * i] as bigint)) / 1e6);
    },
    destroy(): void {
      session.stepTimestamps = null;
      querySet.destroy();
    },
  };
}
