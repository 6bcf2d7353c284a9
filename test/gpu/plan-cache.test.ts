/**
 * Prefill through the model's cached plans (one per token count, on the model's work state, a
 * sequence's state copied in and out in the same command buffer): two sessions whose chunked
 * prefills interleave each get the float64 reference's logits for their own sequence, and a
 * chunk size already built creates no bind group or buffer again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import { buildModel } from '../../app/arch/build';
import { mamba1ForwardRef } from '../../app/arch/mamba1/reference';
import { Session } from '../../app/model/session';
import { loadTestModel, testSeed, useTestGpu } from '../support/gpu';
import { writeRandomMamba1 } from '../support/random-model';

/** Float32 GPU against the float64 reference through a whole model (as in mamba1.test.ts). */
const TOL = 1e-4;
const scratch = mkdtempSync(path.join(tmpdir(), 'plan-cache-'));
let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('cached prefill plans', () => {
  it('interleaved sessions keep their own states; a built chunk size allocates nothing again', async (test) => {
    if (!ctx) return test.skip(skipReason);
    writeRandomMamba1(scratch, { model_type: 'mamba', vocab_size: 31, hidden_size: 20, num_hidden_layers: 2, state_size: 5, time_step_rank: 3 }, testSeed());
    const { inspection, weights, table } = await loadTestModel(ctx, scratch);
    const V = inspection.config.vocabSize;
    const model = buildModel(ctx, inspection, weights, 7); // chunks of 7 tokens
    const a = new Session(ctx, model);
    const b = new Session(ctx, model);
    const idsA = Array.from({ length: 23 }, (_, t) => (t * 5 + 1) % V);
    const idsB = Array.from({ length: 16 }, (_, t) => (t * 11 + 4) % V);
    // A: 23 tokens (7 + 7 + 7 + 2), B: 16 (7 + 7 + 2), then A 9 more (7 + 2), all through shared plans.
    a.prefill(idsA);
    b.prefill(idsB);
    const device = ctx.device as unknown as Record<string, (...args: unknown[]) => unknown>;
    let created = 0;
    const originals = ['createBindGroup', 'createBuffer'].map((name) => {
      const f = device[name]!.bind(ctx!.device);
      device[name] = (...args: unknown[]) => {
        created++;
        return f(...args);
      };
      return [name, f] as const;
    });
    const moreA = Array.from({ length: 9 }, (_, t) => (t * 3 + 2) % V);
    a.prefill(moreA);
    for (const [name, f] of originals) device[name] = f;
    expect(created, 'bind groups and buffers made for chunk sizes 7 and 2, already built').toBe(0);
    const last = (ids: number[]) => mamba1ForwardRef(inspection.config, (n) => table.get(n), ids).logits.subarray((ids.length - 1) * V, ids.length * V);
    expect(relativeError(await a.readLogits(), last([...idsA, ...moreA])), 'A').toBeLessThanOrEqual(TOL);
    expect(relativeError(await b.readLogits(), last(idsB)), 'B').toBeLessThanOrEqual(TOL);
    // B continues from its own state, untouched by A's prefills.
    b.step(3);
    expect(relativeError(await b.readLogits(), last([...idsB, 3])), 'B after a step').toBeLessThanOrEqual(TOL);
    for (const s of [a, b]) s.destroy();
    model.destroy();
    weights.destroy();
  });
});
