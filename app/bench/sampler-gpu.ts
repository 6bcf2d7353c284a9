/**
 * The GPU time of one sampling (app/kernels/sample.ts) over a vocabulary's logits, with the first
 * stage (candidates) and without it (the whole vocabulary searched in one workgroup), for the
 * bench's `sampler_gpu_ms`: what a token's sampling costs and what the first stage saves, measured
 * side by side in the same run. Each sampling in a compute pass of its own, back to back, as a
 * generation encodes them; a timestamp at the end of an empty pass before them and one after.
 */
import { readBuffer, storageBuffer, uploadF32 } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { sample, type CandidateUse, type SampleSettings } from '../kernels/sample.js';
import { randomF32 } from '../kernels/self-test.js';
import { stampPass } from '../model/model.js';
import { median } from './median.js';
import { readTimestamps } from './step-gpu.js';

export interface SamplerGpuMs {
  /** Median ms a sampling with the first stage (where the settings use it). */
  candidates: number;
  /** Median ms a sampling searching the whole vocabulary. */
  whole_vocabulary: number;
}

/**
 * Median GPU ms of a sampling of `vocab` random logits (uniform in ±8, as a model's spread) with
 * `settings`, with and without the first stage: `rounds` timed runs of `samples` samplings each
 * (default 5 of 32; 2 of 4 on a software adapter, where a sampling takes milliseconds and the
 * bench's tests run the bench many times). Null without timestamp-query or where the timestamps
 * are not usable.
 */
export async function samplerGpuMs(
  ctx: GpuContext,
  vocab: number,
  settings: Omit<SampleSettings, 'u'>,
  samples = ctx.adapter.software ? 4 : 32,
  rounds = ctx.adapter.software ? 2 : 5,
): Promise<SamplerGpuMs | null> {
  if (!ctx.features.has('timestamp-query')) return null;
  const { device } = ctx;
  const logits = uploadF32(device, 'samplerGpuMs.logits', randomF32(vocab, vocab, 8));
  const token = storageBuffer(device, 'samplerGpuMs.token', 4);
  const querySet = device.createQuerySet({ label: 'samplerGpuMs.queries', type: 'timestamp', count: 2 });
  const time = async (candidates: CandidateUse): Promise<number | null> => {
    const op = sample(ctx, { vocab }, { logits, token }, { ...settings, u: 0.5 }, `samplerGpuMs.${candidates}`, { candidates });
    try {
      const ms: number[] = [];
      for (let r = 0; r < rounds + 1; r++) {
        const encoder = device.createCommandEncoder({ label: 'samplerGpuMs.encoder' });
        stampPass(encoder, 'samplerGpuMs.begin', querySet, 0);
        for (let n = 0; n < samples; n++) {
          const pass = encoder.beginComputePass({ label: 'samplerGpuMs.pass' });
          op.encode(pass);
          pass.end();
        }
        stampPass(encoder, 'samplerGpuMs.end', querySet, 1);
        device.queue.submit([encoder.finish()]);
        const ns = await readTimestamps(device, querySet, 2);
        const t = Number((ns[1] as bigint) - (ns[0] as bigint)) / 1e6 / samples;
        // The first round warms the pipelines; a pair out of order is no measurement.
        if (r > 0 && Number.isFinite(t) && t > 0) ms.push(t);
      }
      // The id was written (a sampling that did nothing would time nothing).
      const id = new Uint32Array(await readBuffer(device, token, 4))[0] as number;
      if (id >= vocab) throw new Error(`samplerGpuMs: the sampler wrote id ${id}, outside 0..${vocab - 1}`);
      return ms.length > 0 ? median(ms) : null;
    } finally {
      op.destroy();
    }
  };
  try {
    // 'all': the first stage for greedy settings too.
    const candidates = await time('all');
    const whole = await time('none');
    return candidates !== null && whole !== null ? { candidates, whole_vocabulary: whole } : null;
  } finally {
    for (const b of [logits, token]) b.destroy();
    querySet.destroy();
  }
}
