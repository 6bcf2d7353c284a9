/**
 * The studio's float64 whole-model reference (registry.ts referenceForward, the Mamba-2 spec's
 * mixer reference with its normGroupSize) against the official mamba_ssm code's outputs
 * (test/fixtures/golden-mamba-ssm, made on the GPU machine): 8 groups, the gated norm per group,
 * read from mamba_ssm's config.json and from mistral's params.json + consolidated.safetensors.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { referenceForward } from '../../app/arch/registry';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { relativeError } from '../../app/kernels/self-test';
import { folderModelFiles } from '../../app/node/folder';
import { readGolden } from '../support/golden';

const goldenDir = path.resolve(import.meta.dirname, '../fixtures/golden-mamba-ssm');
const cases = existsSync(goldenDir) ? readdirSync(goldenDir).filter((n) => !n.includes('.')).sort() : [];
const TOL = 1e-4;

describe('float64 reference against mamba_ssm', () => {
  it('has the mamba_ssm golden cases', () => {
    expect(cases).toEqual(['codestral-tiny', 'mamba2-ssm-8groups']);
  });

  it.for(cases)('%s: logits, Δ, B, C and the gated norm per group within 1e-4', async (name) => {
    const dir = path.join(goldenDir, name);
    const files = await folderModelFiles(dir);
    const inspection = await inspectModel(files);
    const weights = await readAllTensorsF32(files, inspection);
    await files.close();
    const config = inspection.config;
    expect(config.normGroupSize * config.nGroups).toBe(config.dInner);
    const { f32, ints } = await readGolden(dir);
    const ids = await ints('input_ids');
    const ref = referenceForward(config, (n) => weights.get(n), ids);
    expect(relativeError(Float32Array.from(ref.logits), await f32('logits')), 'logits').toBeLessThanOrEqual(TOL);
    for (let l = 0; l < config.nLayer; l++) {
      const taps = ref.layers[l]!;
      expect(relativeError(Float32Array.from(taps.delta!), await f32(`layers.${l}.delta`)), `layer ${l} Δ`).toBeLessThanOrEqual(TOL);
      expect(relativeError(Float32Array.from(taps.B!), await f32(`layers.${l}.B`)), `layer ${l} B`).toBeLessThanOrEqual(TOL);
      expect(relativeError(Float32Array.from(taps.C!), await f32(`layers.${l}.C`)), `layer ${l} C`).toBeLessThanOrEqual(TOL);
    }
    // With the norm over all of d_inner (transformers' way) the same weights miss mamba_ssm by far.
    const full = referenceForward({ ...config, normGroupSize: config.dInner }, (n) => weights.get(n), ids);
    expect(relativeError(Float32Array.from(full.logits), await f32('logits'))).toBeGreaterThan(0.1);
  });
});
