/**
 * The .bin files torch.save itself wrote (test/fixtures/pytorch-bin/, made by
 * scripts/golden/make_bin_fixtures.py with torch 2.x on the GPU machine): every case opens as
 * format "pytorch", every tensor's values equal its safetensors twin's (written from the same
 * tensors by the safetensors library) and the values torch reported (manifest.json), views keep
 * their storage offsets, a tied head is the embedding, and the transposed case is refused.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { DTYPE_BYTES } from '../../app/formats/safetensors';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { readPytorchCheckpoint } from '../../app/formats/pytorch';
import { openFileSource } from '../../app/node/file-source';
import { folderModelFiles } from '../../app/node/folder';

const root = process.env.PYTORCH_BIN_FIXTURES ?? path.resolve(import.meta.dirname, '../fixtures/pytorch-bin');
const CASES = ['mamba-ssm-tied-f32', 'mamba-ssm-untied-f32-views', 'mamba-ssm-tied-bf16', 'hf-sharded-f16', 'mamba-ssm-tied-f32-proto4', 'noncontiguous'];
const DTYPES: Record<string, string> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

interface CaseManifest {
  name: string;
  tied: boolean;
  refuse: boolean;
  weight_files: string[];
  zip_entries: Record<string, { name: string; method: number }[]>;
  tensors: Record<string, { dtype: string; shape: number[]; storage_offset: number; stride: number[]; shares_storage_with: string[]; sum: number; first: number[] }>;
}
const manifestOf = (name: string) => JSON.parse(readFileSync(path.join(root, name, 'manifest.json'), 'utf8')) as CaseManifest;

async function inspect(dir: string) {
  const files = await folderModelFiles(dir);
  try {
    const inspection = await inspectModel(files);
    return { inspection, table: await readAllTensorsF32(files, inspection) };
  } finally {
    await files.close();
  }
}

describe('PyTorch .bin fixtures written by torch.save', () => {
  it('has every case', () => {
    const top = JSON.parse(readFileSync(path.join(root, 'manifest.json'), 'utf8')) as { cases: { name: string }[]; failed: string[]; torch: string };
    expect(top.failed).toEqual([]);
    expect(top.cases.map((c) => c.name).sort()).toEqual([...CASES].sort());
    expect(Number(top.torch.split('.')[0])).toBeGreaterThanOrEqual(2); // made with torch 2.x, as the Hub's recent .bin files
  });

  it.for(CASES.filter((c) => c !== 'noncontiguous'))('%s: opens as "pytorch"; every tensor equals its safetensors twin and torch’s values', async (name) => {
    const m = manifestOf(name);
    const { inspection, table } = await inspect(path.join(root, name, 'bin'));
    expect(inspection.format).toBe('pytorch');
    expect(inspection.weightFiles).toEqual(m.weight_files);
    expect(inspection.tiedHead).toBe(m.tied);
    // torch writes every entry stored (method 0), data/<key> per storage, and (torch ≥ 2.1) a byteorder record.
    for (const entries of Object.values(m.zip_entries)) {
      expect(entries.every((e) => e.method === 0)).toBe(true);
      expect(entries.some((e) => e.name.endsWith('/byteorder'))).toBe(true);
    }
    const twin = await inspect(path.join(root, name, 'safetensors'));
    expect(twin.inspection.format).toBe('safetensors');
    expect([...table.keys()].sort()).toEqual([...twin.table.keys()].sort());
    for (const [tensor, values] of table) expect(values, tensor).toEqual(twin.table.get(tensor));
    for (const [tensor, t] of Object.entries(m.tensors)) {
      if (m.tied && tensor === 'lm_head.weight') {
        expect(inspection.tensors.has(tensor)).toBe(false);
        continue;
      }
      const loc = inspection.tensors.get(tensor)!;
      expect(loc, tensor).toBeDefined();
      expect(loc.dtype).toBe(DTYPES[t.dtype]);
      expect(loc.shape).toEqual(t.shape);
      const values = table.get(tensor)!;
      expect([...values.subarray(0, t.first.length)], tensor).toEqual(t.first);
      const sum = values.reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - t.sum), tensor).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(t.sum)) + 1e-6);
      // Views of one storage lie where their storage offsets put them.
      for (const other of t.shares_storage_with) {
        const o = inspection.tensors.get(other);
        if (!o) continue;
        const size = DTYPE_BYTES[loc.dtype as keyof typeof DTYPE_BYTES];
        expect(loc.offset - o.offset, `${tensor} vs ${other}`).toBe((t.storage_offset - m.tensors[other]!.storage_offset) * size);
      }
    }
  });

  it('views: D and dt_proj.bias lie at non-zero offsets of one storage', async () => {
    const m = manifestOf('mamba-ssm-untied-f32-views');
    expect(m.tensors['backbone.layers.0.mixer.D']!.storage_offset).toBe(5);
    const source = await openFileSource(path.join(root, 'mamba-ssm-untied-f32-views', 'bin', 'pytorch_model.bin'));
    try {
      const ckpt = await readPytorchCheckpoint(source);
      const d = ckpt.tensors.get('backbone.layers.0.mixer.D')!;
      const b = ckpt.tensors.get('backbone.layers.0.mixer.dt_proj.bias')!;
      expect(d.storageKey).toBe(b.storageKey);
      expect(b.offset - d.offset).toBe(d.byteLength);
    } finally {
      await source.close();
    }
  });

  it('noncontiguous: the transposed x_proj.weight is refused, naming the file and the tensor', async () => {
    const dir = path.join(root, 'noncontiguous', 'bin');
    expect(existsSync(path.join(dir, 'pytorch_model.bin'))).toBe(true);
    const files = await folderModelFiles(dir);
    await expect(inspectModel(files)).rejects.toThrow(/pytorch_model\.bin: tensor "backbone\.layers\.0\.mixer\.x_proj\.weight": is not contiguous/);
    await files.close();
  });
});
