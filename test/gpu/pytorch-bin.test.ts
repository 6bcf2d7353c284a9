/**
 * A PyTorch .bin checkpoint runs exactly as its safetensors twin: each fixture of
 * test/fixtures/pytorch-bin/ (torch.save on the GPU machine, scripts/golden/make_bin_fixtures.py)
 * is loaded from pytorch_model.bin (or its shards) through the streaming loader and run; the logits
 * at every position must equal the twin's bit for bit (the same values reach the GPU), and the
 * float64 NumPy reference's (golden.safetensors, computed from the weights by ref_numpy.py)
 * within 1e-3 — so names, tie, vocabulary padding and dtypes mean what the checkpoint means.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../app/arch/build';
import { inspectModel } from '../../app/arch/inspect';
import { readF32, storageBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import { loadWeights } from '../../app/model/loader';
import { Session } from '../../app/model/session';
import { folderModelFiles } from '../../app/node/folder';
import { readGolden } from '../support/golden';
import { useTestGpu } from '../support/gpu';

const TOL = 1e-3;
const root = process.env.PYTORCH_BIN_FIXTURES ?? path.resolve(import.meta.dirname, '../fixtures/pytorch-bin');
const CASES = ['mamba-ssm-tied-f32', 'mamba-ssm-untied-f32-views', 'mamba-ssm-tied-bf16', 'hf-sharded-f16', 'mamba-ssm-tied-f32-proto4'];

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));

async function logitsOf(dir: string, ids: number[]): Promise<{ logits: Float32Array; format: string; vocab: number }> {
  const files = await folderModelFiles(dir);
  const inspection = await inspectModel(files);
  const weights = await loadWeights(ctx!, files, inspection, { chunkBytes: 1000 }); // small chunks: tensors stream in several reads
  await files.close();
  const model = buildModel(ctx!, inspection, weights, 16);
  const session = new Session(ctx!, model);
  const V = inspection.config.vocabSize;
  const out = storageBuffer(ctx!.device, 'PytorchBin.logits', ids.length * V * 4);
  try {
    session.prefill(ids, { allLogits: out }); // chunks of 16: the state carried across
    return { logits: await readF32(ctx!.device, out, ids.length * V), format: inspection.format, vocab: V };
  } finally {
    out.destroy();
    session.destroy();
    model.destroy();
    weights.destroy();
  }
}

describe('PyTorch .bin checkpoints on the GPU', () => {
  it.for(CASES)('%s: the .bin gives its safetensors twin’s logits exactly, and the float64 reference’s within 1e-3', async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const dir = path.join(root, name);
    const { f32, ints } = await readGolden(dir);
    const ids = [...(await ints('input_ids'))];
    const bin = await logitsOf(path.join(dir, 'bin'), ids);
    const twin = await logitsOf(path.join(dir, 'safetensors'), ids);
    expect(bin.format).toBe('pytorch');
    expect(twin.format).toBe('safetensors');
    expect(bin.logits.length).toBe(ids.length * bin.vocab);
    expect(bin.logits, `${name}: .bin and safetensors logits`).toEqual(twin.logits);
    const golden = await f32('logits');
    expect(golden.length).toBe(bin.logits.length);
    const err = relativeError(bin.logits, golden);
    console.info(`[pytorch-bin] ${name}: relative error vs the float64 reference ${err.toExponential(2)}`);
    expect(err, `${name} logits vs ref_numpy`).toBeLessThanOrEqual(TOL);
  });
});
