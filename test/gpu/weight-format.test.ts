/**
 * The weights on the GPU keep an F16 checkpoint's precision by default (issue 17, item 1 — for
 * F16): tensorWeightFormat('auto') keeps packed halves for
 * the F16 twin of test/fixtures/pytorch-bin/hf-sharded-f16 (torch.save on the GPU machine), whose
 * GPU buffers then take half the bytes for the big matrices, and whose logits still match the
 * float64 reference (golden.safetensors) within the golden bound, as the fp32 load does. The
 * values in the halves are the file's own, so the two loads differ only by the kernels' rounding.
 */
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
const dir = path.resolve(import.meta.dirname, '../fixtures/pytorch-bin/hf-sharded-f16');

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));

async function run(choice: WeightChoice, ids: number[]) {
  const files = await folderModelFiles(path.join(dir, 'safetensors'));
  const inspection = await inspectModel(files);
  const weights = await loadWeights(ctx!, files, inspection, { weightFormat: choice });
  const weightFormat = describeWeightFormats(weights.formats ?? new Map(), inspection);
  await files.close();
  const model = buildModel(ctx!, inspection, weights, 16);
  const session = new Session(ctx!, model);
  const V = inspection.config.vocabSize;
  const out = storageBuffer(ctx!.device, 'WeightFormat.logits', ids.length * V * 4);
  try {
    session.prefill(ids, { allLogits: out });
    return { weightFormat, bytes: weights.bytesOnGpu, planned: gpuMemoryNeed(inspection, { weightFormat: choice }).weights, logits: await readF32(ctx!.device, out, ids.length * V) };
  } finally {
    out.destroy();
    session.destroy();
    model.destroy();
    weights.destroy();
  }
}

describe('weights on the GPU in the checkpoint’s precision', () => {
  it('an F16 checkpoint loads as packed halves by default, in less memory, with the reference’s logits', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { f32, ints } = await readGolden(dir);
    const ids = [...(await ints('input_ids'))];
    const golden = await f32('logits');
    const auto = await run('auto', ids);
    const full = await run('f32', ids);
    expect(auto.weightFormat).toBe('f16');
    expect(full.weightFormat).toBe('fp32');
    // What the memory plan said is what was allocated, and halves take less.
    expect(auto.bytes).toBe(auto.planned);
    expect(full.bytes).toBe(full.planned);
    expect(auto.bytes).toBeLessThan(0.75 * full.bytes);
    const errAuto = relativeError(auto.logits, golden);
    const errFull = relativeError(full.logits, golden);
    console.info(`[weights] hf-sharded-f16: f16 ${auto.bytes} B, logits vs float64 ${errAuto.toExponential(2)}; fp32 ${full.bytes} B, ${errFull.toExponential(2)}`);
    expect(errAuto).toBeLessThanOrEqual(TOL);
    expect(errFull).toBeLessThanOrEqual(TOL);
  });
});
