/**
 * The architecture registry: every golden fixture's config is read by its architecture's spec,
 * and the whole-model float64 reference built from that spec's mixer reference gives transformers'
 * logits and per-layer Δ, B, C (the goldens were made by scripts/golden/ on a GPU machine); the
 * architecture names are the registry's, written once.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { ARCHITECTURE_NAMES, ARCHITECTURES, architectureLabel, architectureOf, architectureSpec, referenceForward, traceLayout } from '../../app/arch/registry';
import { expectedTensors } from '../../app/arch/tensors';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { relativeError } from '../../app/kernels/self-test';
import { folderModelFiles } from '../../app/node/folder';
import { readGolden } from '../support/golden';

const goldenDir = path.resolve(import.meta.dirname, '../fixtures/golden');
const cases = existsSync(goldenDir) ? readdirSync(goldenDir).filter((n) => /^(mamba|falcon-mamba)/.test(n)).sort() : [];
const TOL = 1e-3;

describe('architecture registry', () => {
  it('lists each architecture once, by name, with a spec for every part', () => {
    expect(ARCHITECTURE_NAMES).toEqual(['mamba', 'mamba2', 'falcon_mamba', 'nemotron_h', 'granitemoehybrid']);
    expect(new Set(ARCHITECTURE_NAMES).size).toBe(ARCHITECTURES.length);
    for (const name of ARCHITECTURE_NAMES) expect(architectureSpec(name).name).toBe(name);
    expect(() => architectureSpec('jamba')).toThrow(/"jamba" is not an architecture the studio runs \(it runs mamba, mamba2, falcon_mamba, nemotron_h, granitemoehybrid\)/);
    expect(architectureOf({ ssm_cfg: { layer: 'Mamba2' }, d_model: 8 })).toBe('mamba2');
    expect(architectureOf({ d_model: 8 })).toBe('mamba');
    expect(architectureOf({ ssm_cfg: { layer: 'Mamba9' }, d_model: 8 })).toBe('unknown');
    expect(architectureOf({ model_type: 'falcon_mamba' })).toBe('falcon_mamba');
    expect(architectureOf({ architectures: ['FalconMambaForCausalLM'] })).toBe('falcon_mamba');
    expect(architectureLabel('falcon_mamba')).toBe('Falcon-Mamba');
    expect(architectureOf({ model_type: 'nemotron_h' })).toBe('nemotron_h');
    expect(architectureOf({ architectures: ['GraniteMoeHybridForCausalLM'] })).toBe('granitemoehybrid');
    expect(architectureLabel('unknown')).toBe('unknown');
  });

  it('has golden fixtures of every architecture', () => {
    const archOf = (c: string) => (c.startsWith('falcon-mamba') ? 'falcon_mamba' : c.startsWith('mamba1') ? 'mamba' : 'mamba2');
    // The hybrids' goldens (test/gpu/golden-hybrid.test.ts) are in their own folder.
    const hybridDir = path.resolve(import.meta.dirname, '../fixtures/golden-hybrid');
    const hybrids = readdirSync(hybridDir).filter((n) => !n.includes('.'));
    const hybridArch = (c: string) => (c.startsWith('nemotron-h') ? 'nemotron_h' : c.startsWith('granite-h') ? 'granitemoehybrid' : 'mamba2');
    expect(new Set([...cases.map(archOf), ...hybrids.map(hybridArch)])).toEqual(new Set(ARCHITECTURE_NAMES));
  });

  it.for(cases)('%s: the spec-built float64 reference gives transformers\' logits, Δ, B and C', async (name) => {
    const dir = path.join(goldenDir, name);
    const files = await folderModelFiles(dir);
    const inspection = await inspectModel(files);
    const weights = await readAllTensorsF32(files, inspection);
    await files.close();
    const { f32, ints } = await readGolden(dir);
    const ids = await ints('input_ids');
    const config = inspection.config;
    // The spec's tensors are exactly what the file holds (lm_head only when untied).
    const expected = expectedTensors(config, inspection.embeddingName).filter((s) => !s.optional || weights.has(s.name));
    expect(expected.map((s) => s.name).sort()).toEqual([...weights.keys()].sort());
    const ref = referenceForward(config, (n) => weights.get(n), ids);
    expect(relativeError(Float32Array.from(ref.logits), await f32('logits'))).toBeLessThanOrEqual(TOL);
    const layout = traceLayout(config);
    for (let l = 0; l < config.nLayer; l++) {
      const taps = ref.layers[l]!;
      expect(taps.delta!.length).toBe(ids.length * layout.deltaWidth);
      expect(relativeError(Float32Array.from(taps.delta!), await f32(`layers.${l}.delta`)), `layer ${l} Δ`).toBeLessThanOrEqual(TOL);
      expect(relativeError(Float32Array.from(taps.B!), await f32(`layers.${l}.B`)), `layer ${l} B`).toBeLessThanOrEqual(TOL);
      expect(relativeError(Float32Array.from(taps.C!), await f32(`layers.${l}.C`)), `layer ${l} C`).toBeLessThanOrEqual(TOL);
    }
  });
});
