/**
 * A decode step's GPU time (app/bench/step-gpu.ts, the bench's decode_step_gpu_ms): encodeSteps
 * writes the begin query as an empty pass before the steps ends and the end query as one after
 * them ends (copies between passes included, nothing where there is no dispatch), and timeStepGpu
 * gives one positive duration per step of a generation, which together fit inside its wall time.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../app/arch/build';
import { readTimestamps, timeStepGpu } from '../../app/bench/step-gpu';
import { storageBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { kernelPart } from '../../app/kernels/dispatch';
import { generate } from '../../app/model/generate';
import { encodeSteps, type LanguageModel, type Step } from '../../app/model/model';
import { Session } from '../../app/model/session';
import { useRandomModelGpu } from '../support/gpu';

let ctx: GpuContext | null = null;
let skipReason = '';
let model: LanguageModel;

useRandomModelGpu({ model_type: 'mamba', vocab_size: 97, hidden_size: 24, num_hidden_layers: 3, state_size: 8 }, (gpu) => {
  ({ ctx, skipReason } = gpu);
  if (ctx && !ctx.features.has('timestamp-query')) {
    ctx = null;
    skipReason = 'this adapter has no timestamp-query';
  }
  if (ctx) model = buildModel(ctx, gpu.model.inspection, gpu.model.weights, 16);
});
// Before the device goes (useRandomModelGpu's afterAll, run after this one: Vitest runs after-hooks as a stack).
afterAll(() => model?.destroy());

describe('decode step GPU time', () => {
  it('encodeSteps writes the begin query before the steps and the end query after them, across copies', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const n = 4099; // odd: a tail workgroup
    const a = storageBuffer(device, 'step-gpu.a', 4 * n);
    const b = storageBuffer(device, 'step-gpu.b', 4 * n);
    const code = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { if (g.x < ${n}u) { a[g.x] = a[g.x] * 1.5 + 1.0; } }`;
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
    const bind = (buffer: GPUBuffer) => device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer } }] });
    const dispatchOn = (buffer: GPUBuffer): Step => {
      const part = kernelPart('step-gpu.scale', pipeline, bind(buffer), [Math.ceil(n / 64)]);
      return { kind: 'dispatch', dispatch: { label: part.name, encode: (pass) => part.encode(pass), destroy: () => {} } };
    };
    const copy: Step = { kind: 'copy', from: a, fromOffset: 0, to: b, toOffset: 0, bytes: 4 * n };
    const cases: { steps: Step[]; written: boolean }[] = [
      { steps: [dispatchOn(a), copy, dispatchOn(b), dispatchOn(b)], written: true },
      { steps: [copy, dispatchOn(a), copy], written: true },
      { steps: [dispatchOn(a)], written: true },
      { steps: [copy], written: false },
    ];
    for (const { steps, written } of cases) {
      const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
      const encoder = device.createCommandEncoder();
      encodeSteps(encoder, 'step-gpu.test', steps, { querySet, begin: 0, end: 1 });
      device.queue.submit([encoder.finish()]);
      const ns = await readTimestamps(device, querySet, 2);
      expect(ns).toHaveLength(2);
      const [begin = 0n, end = 0n] = ns;
      if (written) {
        expect(begin, `begin of ${steps.map((s) => s.kind).join(',')}`).toBeGreaterThan(0n);
        expect(end, `end of ${steps.map((s) => s.kind).join(',')}`).toBeGreaterThanOrEqual(begin);
      } else {
        expect([begin, end], 'no pass: no query written').toEqual([0n, 0n]);
      }
      querySet.destroy();
    }
    a.destroy();
    b.destroy();
  });

  it("timeStepGpu gives each step of a generation a positive GPU time that together fit in the generation's wall time", async (test) => {
    if (!ctx) return test.skip(skipReason);
    const tokens = 11;
    const session = new Session(ctx, model);
    const timer = timeStepGpu(ctx, session, 64);
    await ctx.device.queue.onSubmittedWorkDone();
    const started = performance.now();
    const run = await generate(ctx, session, [3, 1, 4, 1, 5], { maxTokens: tokens, temperature: 0 });
    await ctx.device.queue.onSubmittedWorkDone();
    const wallMs = performance.now() - started;
    expect(run.ids).toHaveLength(tokens);
    const ms = await timer.read();
    // The first token comes from the prompt's logits; each later one is a step.
    expect(ms).toHaveLength(tokens - 1);
    for (const t of ms) expect(t).toBeGreaterThan(0);
    // Steps run one after another on one queue, inside the generation.
    expect(ms.reduce((s, t) => s + t, 0)).toBeLessThan(wallMs);
    // Once read, later steps write no timestamps.
    expect(session.stepTimestamps).toBeNull();
    timer.destroy();
    session.destroy();
  });

  it('times only as many steps as it was asked for, and refuses a count that is no count', (test) => {
    if (!ctx) return test.skip(skipReason);
    const session = new Session(ctx, model);
    expect(() => timeStepGpu(ctx as GpuContext, session, 0)).toThrow(/maxSteps must be an integer ≥ 1, got 0/);
    const timer = timeStepGpu(ctx, session, 2);
    const ask = session.stepTimestamps as () => unknown;
    expect(ask()).toMatchObject({ begin: 0, end: 1 });
    expect(ask()).toMatchObject({ begin: 2, end: 3 });
    expect(ask()).toBeNull();
    timer.destroy();
    expect(session.stepTimestamps).toBeNull();
    session.destroy();
  });
});
