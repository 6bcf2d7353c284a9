/**
 * The weights on the GPU keep the checkpoint's precision by default (issue 17, item 1; the GGML
 * blocks: test/gpu/weight-blocks.test.ts): tensorWeightFormat('auto') keeps packed halves for
 * the F16 twin of test/fixtures/pytorch-bin/hf-sharded-f16 and the BF16 one of
 * mamba-ssm-tied-bf16 (torch.save on the GPU machine), whose
 * GPU buffers then take half the bytes for the big matrices, and whose logits still match the
 * float64 reference (golden.safetensors) within the golden bound, as the fp32 load does. The
 * values in the halves are the file's own, so the two loads differ only by the kernels' rounding.
 * And a matrix larger than one binding is split into row ranges (app/model/memory.ts weightParts).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../app/arch/build';
import { inspectModel } from '../../app/arch/inspect';
import { readF32, storageBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import { loadWeights } from '../../app/model/loader';
import { describeWeightFormats, gpuMemoryNeed, type WeightChoice } from '../../app/model/memory';
import { Session } from '../../app/model/session';
import { folderModelFiles } from '../../app/node/folder';
import { readGolden } from '../support/golden';
import { useTestGpu } from '../support/gpu';

const TOL = 1e-3;
const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/pytorch-bin');

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));

async function run(dir: string, choice: WeightChoice, ids: number[], bindingLimit?: number) {
  const files = await folderModelFiles(existsSync(path.join(dir, 'safetensors')) ? path.join(dir, 'safetensors') : dir);
  const inspection = await inspectModel(files);
  const weights = await loadWeights(ctx!, files, inspection, { weightFormat: choice, ...(bindingLimit !== undefined ? { bindingLimit } : {}) });
  const weightFormat = describeWeightFormats(weights.formats ?? new Map(), inspection);
  await files.close();
  const model = buildModel(ctx!, inspection, weights, 16);
  const session = new Session(ctx!, model);
  const V = inspection.config.vocabSize;
  const out = storageBuffer(ctx!.device, 'WeightFormat.logits', ids.length * V * 4);
  try {
    session.prefill(ids, { allLogits: out });
    const logits = await readF32(ctx!.device, out, ids.length * V);
    // Three decode steps (the fused decode path, its LM head and embedding), greedy.
    const decoded: Float32Array[] = [];
    let next = argmax(logits.subarray((ids.length - 1) * V));
    for (let step = 0; step < 3; step++) {
      session.step(next);
      const row = await readF32(ctx!.device, session.logits, V);
      decoded.push(row);
      next = argmax(row);
    }
    const parts = [...(weights.parts ?? new Map()).entries()].map(([name, list]) => [name, list.length] as const);
    return { weightFormat, parts, bytes: weights.bytesOnGpu, planned: gpuMemoryNeed(inspection, { weightFormat: choice, ...(bindingLimit !== undefined ? { bindingLimit } : {}) }).weights, logits, decoded };
  } finally {
    out.destroy();
    session.destroy();
    model.destroy();
    weights.destroy();
  }
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

describe('a matrix larger than one binding is split into row ranges', () => {
  // A binding limit of a few rows (a test knob: real limits are 128 MiB and up) splits the
  // vocabulary-sized matrices; the outputs must be those of the unsplit model: each row of the
  // LM head and of the embedding is computed by the same kernel from the same values.
  for (const [fixture, choice, limit, expected] of [
    // mamba1-bias-untied: V = 320, D = 64, untied: the embedding and lm_head (fp32 rows of 256 B)
    // in parts of 256 + 64 rows; in_proj (256 rows, 64 KiB) is the largest other tensor and fits.
    [path.resolve(import.meta.dirname, '../fixtures/golden/mamba1-bias-untied'), 'f32', 256 * 256 + 16, [['backbone.embeddings.weight', 2], ['lm_head.weight', 2]]],
    // hf-sharded-f16 (V = 256, D = 16, untied): f16 rows of 32 B, in 4 parts of 64 rows; x_proj
    // ([33, 32] f16: 2112 B) is the largest other tensor and fits.
    [path.join(FIXTURES, 'hf-sharded-f16'), 'auto', 2112 + 16, [['backbone.embeddings.weight', 4], ['lm_head.weight', 4]]],
  ] as const) {
    it(`${path.basename(fixture)} (${choice}): logits and greedy decode equal the unsplit model's`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const golden = await readGolden(fixture);
      const ids = [...(await golden.ints('input_ids'))].slice(0, 9);
      const whole = await run(fixture, choice, ids);
      const split = await run(fixture, choice, ids, limit);
      expect(whole.parts).toEqual([]);
      expect(new Map(split.parts)).toEqual(new Map(expected.filter(([name]) => name !== 'lm_head.weight' || split.parts.some(([n]) => n === name))));
      expect(split.bytes).toBe(split.planned);
      expect(relativeError(split.logits, whole.logits)).toBeLessThanOrEqual(1e-6);
      for (const [step, row] of split.decoded.entries()) expect(relativeError(row, whole.decoded[step]!), `decode step ${step}`).toBeLessThanOrEqual(1e-6);
    });
  }
});

describe('weights on the GPU in the checkpoint’s precision', () => {
  for (const [fixture, format] of [
    ['hf-sharded-f16', 'f16'],
    ['mamba-ssm-tied-bf16', 'bf16'],
  ] as const) {
    it(`${fixture}: loads as packed ${format} by default, in less memory, with the reference’s logits`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const dir = path.join(FIXTURES, fixture);
      const { f32, ints } = await readGolden(dir);
      const ids = [...(await ints('input_ids'))];
      const golden = await f32('logits');
      const auto = await run(dir, 'auto', ids);
      const full = await run(dir, 'f32', ids);
      expect(auto.weightFormat).toBe(format);
      expect(full.weightFormat).toBe('fp32');
      // What the memory plan said is what was allocated, and halves take less.
      expect(auto.bytes).toBe(auto.planned);
      expect(full.bytes).toBe(full.planned);
      expect(auto.bytes).toBeLessThan(0.75 * full.bytes);
      const errAuto = relativeError(auto.logits, golden);
      const errFull = relativeError(full.logits, golden);
      console.info(`[weights] ${fixture}: ${format} ${auto.bytes} B, logits vs float64 ${errAuto.toExponential(2)}; fp32 ${full.bytes} B, ${errFull.toExponential(2)}`);
      expect(errAuto).toBeLessThanOrEqual(TOL);
      expect(errFull).toBeLessThanOrEqual(TOL);
    });
  }
});
