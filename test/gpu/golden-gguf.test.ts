/**
 * GGUF checkpoints run through the same path as safetensors: each golden fixture's weights are
 * written here as a GGUF file the way llama.cpp's converter lays them out (token_embd, blk.i.ssm_in,
 * ssm_conv1d squeezed to [C, K], ssm_a = −exp(A_log) — [H, 1] for Mamba-2 —, ssm_d, the Mamba-2
 * norm grouped as [G, d_inner / G], output_norm, output), loaded by the GGUF reader, run on the GPU,
 * and the logits at every position must equal transformers' (golden.safetensors) within 1e-3.
 *
 * One convention differs on purpose: llama.cpp (like mamba_ssm) normalizes Mamba-2's gated RMSNorm
 * per group, transformers over all of d_inner (test/fixtures/golden/README.md, note 3). With
 * n_groups 2 (mamba2-groups) and 8 (mamba2-8groups) the GGUF model must then differ from transformers by exactly what
 * the fixture's maker measured for a per-group norm (`logits_rel_diff_if_norm_per_group` in the
 * manifest, 0.50027), and equal the safetensors model run here with the norm made per group.
 *
 * Falcon-Mamba (falcon-mamba-odd) is written as llama.cpp's converter writes it: general.architecture
 * "mamba" with mamba.ssm.dt_b_c_rms = true. llama.cpp runs that norm with the layer norm epsilon;
 * the case has mixer_rms_eps = layer_norm_epsilon, so its GGUF form must give transformers' logits.
 * The same file without the key is plain Mamba-1 and must miss them by what the fixture's maker
 * measured for no mixer norm (`logits_rel_diff_if_no_mixer_norm`).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import { loadWeights } from '../../app/model/loader';
import { folderModelFiles } from '../../app/node/folder';
import { f32TensorList, GT, mambaGgufKv, writeGguf } from '../support/gguf-writer';
import { readGolden } from '../support/golden';
import { allPositionLogits, useTestGpu } from '../support/gpu';

const TOL = 1e-3;
const goldenDir = path.resolve(import.meta.dirname, '../fixtures/golden');
/** mamba1-bias-untied is left out: llama.cpp's Mamba-1 has no in_proj / out_proj biases. */
const cases = ['mamba1-tied', 'mamba1-odd', 'mamba2-8groups', 'mamba2-groups', 'mamba2-one-group', 'falcon-mamba-odd'].filter((c) => existsSync(path.join(goldenDir, c)));
const manifest = existsSync(path.join(goldenDir, 'manifest.json'))
  ? (JSON.parse(readFileSync(path.join(goldenDir, 'manifest.json'), 'utf8')) as {
      cases: { name: string; logits_rel_diff_if_norm_per_group?: number; logits_rel_diff_if_no_mixer_norm?: number }[];
    })
  : { cases: [] };
const scratch = mkdtempSync(path.join(tmpdir(), 'golden-gguf-'));

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The fixture's safetensors weights as llama.cpp would store them (Falcon-Mamba: `dtBcRms` false leaves its key out). */
async function toGguf(dir: string, dtBcRms = true): Promise<Uint8Array> {
  const files = await folderModelFiles(dir);
  const inspection = await inspectModel(files);
  const table = await readAllTensorsF32(files, inspection);
  await files.close();
  const c = inspection.config;
  // llama.cpp writes Falcon-Mamba as "mamba" (with mamba.ssm.dt_b_c_rms = true).
  const falcon = c.architecture === 'falcon_mamba';
  const arch = falcon ? 'mamba' : c.architecture;
  if (arch !== 'mamba' && arch !== 'mamba2') throw new Error(`${dir}: ${arch} is not written as GGUF here`);
  if (falcon) expect(c.mixerRmsEps, 'llama.cpp runs the mixer norm with the layer norm eps').toBe(c.normEps);
  const { tensors, get, put } = f32TensorList(table);
  const { dModel: D, vocabSize: V, dInner: Di, dState: N, dConv: K, nLayer: L } = c;
  put('token_embd.weight', [V, D], get('backbone.embeddings.weight'));
  for (let l = 0; l < L; l++) {
    const m = `backbone.layers.${l}.mixer.`;
    const b = `blk.${l}.`;
    put(`${b}attn_norm.weight`, [D], get(`backbone.layers.${l}.norm.weight`));
    const inProj = get(`${m}in_proj.weight`);
    put(`${b}ssm_in.weight`, [inProj.length / D, D], inProj);
    const conv = get(`${m}conv1d.weight`);
    put(`${b}ssm_conv1d.weight`, [conv.length / K, K], conv);
    if (table.has(`${m}conv1d.bias`)) put(`${b}ssm_conv1d.bias`, [conv.length / K], get(`${m}conv1d.bias`));
    const aLog = get(`${m}A_log`);
    const a = Array.from(aLog, (v) => -Math.exp(v));
    if (arch === 'mamba') {
      const R = c.dtRank;
      put(`${b}ssm_x.weight`, [R + 2 * N, Di], get(`${m}x_proj.weight`));
      put(`${b}ssm_dt.weight`, [Di, R], get(`${m}dt_proj.weight`));
      put(`${b}ssm_dt.bias`, [Di], get(`${m}dt_proj.bias`));
      put(`${b}ssm_a`, [Di, N], a);
      put(`${b}ssm_d`, [Di], get(`${m}D`));
    } else {
      const H = c.nHeads;
      const G = c.nGroups;
      put(`${b}ssm_dt.bias`, [H], get(`${m}dt_bias`));
      put(`${b}ssm_a`, [H, 1], a);
      put(`${b}ssm_d`, [H, 1], get(`${m}D`));
      put(`${b}ssm_norm.weight`, [G, Di / G], get(`${m}norm.weight`));
    }
    put(`${b}ssm_out.weight`, [D, Di], get(`${m}out_proj.weight`));
  }
  put('output_norm.weight', [D], get('backbone.norm_f.weight'));
  if (table.has('lm_head.weight')) put('output.weight', [V, D], get('lm_head.weight'));
  const kv = mambaGgufKv(arch, path.basename(dir), c, 0, falcon && dtBcRms ? [{ key: 'mamba.ssm.dt_b_c_rms', type: GT.BOOL, value: true }] : []);
  return writeGguf({ kv, tensors });
}

describe('golden fixtures written as GGUF', () => {
  it('has the cases', () => {
    expect(cases).toEqual(['mamba1-tied', 'mamba1-odd', 'mamba2-8groups', 'mamba2-groups', 'mamba2-one-group', 'falcon-mamba-odd']);
  });

  it.for(cases)('%s: the GGUF runs and gives transformers’ logits within 1e-3 (up to the per-group norm)', async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const dir = path.join(goldenDir, name);
    const file = path.join(scratch, `${name}.gguf`);
    writeFileSync(file, await toGguf(dir));
    const files = await folderModelFiles(file);
    const inspection = await inspectModel(files);
    expect(inspection.format).toBe('gguf');
    const weights = await loadWeights(ctx, files, inspection);
    await files.close();
    const { f32, ints } = await readGolden(dir);
    const ids = [...(await ints('input_ids'))];
    const golden = await f32('logits');
    // chunks of 64: the state carried across
    const run = (inspected: typeof inspection, loaded: typeof weights) => allPositionLogits(ctx!, inspected, loaded, ids, 64);
    const got = await run(inspection, weights);
    weights.destroy();
    const c = inspection.config;
    if (name.startsWith('falcon')) {
      expect(c).toMatchObject({ architecture: 'falcon_mamba', source: 'gguf' });
      expect(c.mixerRmsEps).toBe(c.normEps); // mamba.attention.layer_norm_rms_epsilon, as llama.cpp runs the mixer norm
      // Without mamba.ssm.dt_b_c_rms the same weights are plain Mamba-1.
      const plainFile = path.join(scratch, `${name}-no-dt-b-c-rms.gguf`);
      writeFileSync(plainFile, await toGguf(dir, false));
      const plainFiles = await folderModelFiles(plainFile);
      const plain = await inspectModel(plainFiles);
      expect(plain.config).toMatchObject({ architecture: 'mamba', mixerRmsEps: 0 });
      const plainWeights = await loadWeights(ctx, plainFiles, plain);
      await plainFiles.close();
      const plainLogits = await run(plain, plainWeights);
      plainWeights.destroy();
      const expectedDiff = manifest.cases.find((m) => m.name === name)?.logits_rel_diff_if_no_mixer_norm;
      expect(expectedDiff).toBeGreaterThan(0.1);
      expect(Math.abs(relativeError(plainLogits, golden) - expectedDiff!), `${name}: without the key, differs from transformers as no mixer norm does`).toBeLessThanOrEqual(TOL);
    }
    if (c.architecture === 'mamba2' && c.nGroups > 1) {
      expect(c.normGroupSize).toBe(c.dInner / c.nGroups);
      const expectedDiff = manifest.cases.find((m) => m.name === name)?.logits_rel_diff_if_norm_per_group;
      expect(expectedDiff).toBeGreaterThan(0.1);
      expect(Math.abs(relativeError(got, golden) - expectedDiff!), `${name}: differs from transformers as a per-group norm does`).toBeLessThanOrEqual(TOL);
      // The safetensors model with the norm per group: the same weights through the other reader.
      const stFiles = await folderModelFiles(dir);
      const st = await inspectModel(stFiles);
      const stWeights = await loadWeights(ctx, stFiles, st);
      await stFiles.close();
      const perGroup = await run({ ...st, config: { ...st.config, normGroupSize: st.config.dInner / st.config.nGroups } }, stWeights);
      stWeights.destroy();
      // Not bit-equal: GGUF stores −exp(A_log) and the reader takes the log back, in float32 (last-bit changes in A).
      expect(relativeError(got, perGroup), `${name}: GGUF = safetensors with a per-group norm`).toBeLessThanOrEqual(1e-5);
    } else {
      expect(relativeError(got, golden), `${name} logits`).toBeLessThanOrEqual(TOL);
    }
  });
});
