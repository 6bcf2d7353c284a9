/**
 * `node tooling/run-step-encode-probe.js [shape …]`: the CPU cost of encoding one fused decode step
 * (LanguageModel.plan(1): the plan a GPU's generation runs each token; software adapters run the
 * general one, so it is built here directly), with nothing else in the loop: per shape (bench
 * SHAPES names, random weights), the dispatches a step has, the median ms to encode and finish its
 * command buffer and to submit it, and the same calls (setPipeline, setBindGroup,
 * dispatchWorkgroups, recorded from the plan) replayed in a bare loop — what is left once the
 * studio's own JS is out of the way. Runs on any adapter (SwiftShader does: the GPU work is queued
 * and awaited every few steps, outside the timings).
 */
import { buildModel } from '../app/arch/build';
import { randomWeights, shapeConfig } from '../app/bench/bench';
import { storageBuffer } from '../app/gpu/buffers';
import { openGpu } from '../app/gpu/context';
import { encodeSteps } from '../app/model/model';

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number;

export async function main(args: string[], gpu: GPU): Promise<number> {
  const shapes = args.length ? args : ['deep-tiny', 'tiny'];
  const ctx = await openGpu(gpu);
  console.log(`adapter: ${ctx.adapter.description || ctx.adapter.device}`);
  const ROUNDS = 40;
  const WARMUP = 8;
  for (const shape of shapes) {
    const config = shapeConfig(shape);
    const { inspection, weights } = randomWeights(ctx, config, 1, 'f16');
    const model = buildModel(ctx, inspection, weights, 16);
    const state = model.newState();
    const logits = storageBuffer(ctx.device, 'Probe.logits', 4 * config.vocabSize);
    const plan = model.plan(1, state, logits, {});
    const dispatches = plan.steps.filter((s) => s.kind === 'dispatch').length;
    const calls: { method: 'setPipeline' | 'setBindGroup' | 'dispatchWorkgroups'; args: unknown[] }[] = [];
    const recorder = new Proxy({}, { get: (_t, method) => (...a: unknown[]) => calls.push({ method: method as (typeof calls)[number]['method'], args: a }) }) as GPUComputePassEncoder;
    for (const s of plan.steps) if (s.kind === 'dispatch') s.dispatch.encode(recorder);
    const encode: number[] = [];
    const submit: number[] = [];
    const bare: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      let t = performance.now();
      const encoder = ctx.device.createCommandEncoder({ label: 'Probe.step' });
      encodeSteps(encoder, 'Probe.step', plan.steps);
      const buffer = encoder.finish();
      const encoded = performance.now();
      ctx.device.queue.submit([buffer]);
      if (r >= WARMUP) {
        encode.push(encoded - t);
        submit.push(performance.now() - encoded);
      }
      t = performance.now();
      const again = ctx.device.createCommandEncoder({ label: 'Probe.bare' });
      const pass = again.beginComputePass();
      for (const c of calls) {
        if (c.method === 'setPipeline') pass.setPipeline(c.args[0] as GPUComputePipeline);
        else if (c.method === 'setBindGroup') pass.setBindGroup(c.args[0] as number, c.args[1] as GPUBindGroup);
        else pass.dispatchWorkgroups(c.args[0] as number, c.args[1] as number | undefined, c.args[2] as number | undefined);
      }
      pass.end();
      again.finish(); // never submitted
      if (r >= WARMUP) bare.push(performance.now() - t);
      if (r % 4 === 3) await ctx.device.queue.onSubmittedWorkDone();
    }
    await ctx.device.queue.onSubmittedWorkDone();
    const [e, s, b] = [median(encode), median(submit), median(bare)];
    console.log(
      `${shape}: ${dispatches} dispatches (${calls.length} calls); encode + finish ${e.toFixed(3)} ms, submit ${s.toFixed(3)} ms, ` +
        `${((1000 * (e + s)) / dispatches).toFixed(2)} µs a dispatch; the recorded calls replayed bare ${b.toFixed(3)} ms (medians of ${ROUNDS - WARMUP})`,
    );
    plan.destroy();
    logits.destroy();
    model.destroy();
    weights.destroy();
  }
  ctx.device.destroy();
  return 0;
}
