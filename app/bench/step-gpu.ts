/**
 * The GPU time of a decode step: timestamps where the step's first compute pass begins and its last
 * one ends (Session.stepTimestamps → encodeSteps), so the time between steps (the queue waiting
 * for the CPU to submit the next one) is left out. Beside a token's wall time and the CPU a step
 * costs (step-cpu.ts) it says what holds the decode: a token much longer than its step's GPU time
 * is held by the CPU or the submission, not by the kernels. Needs the adapter's timestamp-query.
 */
import type { GpuContext } from '../gpu/context.js';
import type { Session } from '../model/session.js';

/** Writes timestamps for the next `maxSteps` one-token steps of `session` (later steps write none). */
export function timeStepGpu(ctx: GpuContext, session: Session, maxSteps: number): { read(): Promise<number[]>; destroy(): void } {
  if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new RangeError(`timeStepGpu: maxSteps must be an integer ≥ 1, got ${maxSteps}`);
  const { device } = ctx;
  // A query set holds at most 4,096 queries (WebGPU's limit): 2,048 steps.
  const steps = Math.min(maxSteps, 2048);
  const querySet = device.createQuerySet({ label: 'timeStepGpu.queries', type: 'timestamp', count: 2 * steps });
  let written = 0;
  session.stepTimestamps = () => (written < steps ? { querySet, begin: 2 * written, end: 2 * written++ + 1 } : null);
  let resolved: GPUBuffer | null = null;
  let staging: GPUBuffer | null = null;
  return {
    /** The ms each timed step took on the GPU, in order (steps taken so far; once they are done). */
    async read(): Promise<number[]> {
      session.stepTimestamps = null;
      const n = written;
      if (n === 0) return [];
      resolved = device.createBuffer({ label: 'timeStepGpu.resolved', size: 16 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      staging = device.createBuffer({ label: 'timeStepGpu.staging', size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const encoder = device.createCommandEncoder({ label: 'timeStepGpu.resolve' });
      encoder.resolveQuerySet(querySet, 0, 2 * n, resolved, 0);
      encoder.copyBufferToBuffer(resolved, 0, staging, 0, 16 * n);
      device.queue.submit([encoder.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const ns = new BigUint64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      return Array.from({ length: n }, (_, i) => Number((ns[2 * i + 1] as bigint) - (ns[2 * i] as bigint)) / 1e6);
    },
    destroy(): void {
      session.stepTimestamps = null;
      querySet.destroy();
      resolved?.destroy();
      staging?.destroy();
    },
  };
}
