/**
 * Falcon-Mamba without the golden fixtures: a random checkpoint in transformers' layout (as
 * FalconMambaForCausalLM saves one) is inspected as Falcon-Mamba and named so by `info`'s summary,
 * and the float64 reference normalizes x_proj's three parts: in layer 0 (whose input does not
 * depend on the norm) B and C are exactly the plain Mamba-1 reference's, each row divided by
 * sqrt(mean square + mixer_rms_eps), and Δ comes from the normalized dt_r.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectModel, summarizeInspection } from '../../app/arch/inspect';
import { referenceForward } from '../../app/arch/registry';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { softplus } from '../../app/model/reference';
import { folderModelFiles } from '../../app/node/folder';
import { mulberry32, writeRandomMamba1 } from '../support/random-model';

const scratch = mkdtempSync(path.join(tmpdir(), 'falcon-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const seed = Number(process.env.FALCON_TEST_SEED ?? Date.now() % 1_000_000);
const RAW = { model_type: 'falcon_mamba', architectures: ['FalconMambaForCausalLM'], vocab_size: 37, hidden_size: 24, num_hidden_layers: 2, state_size: 7, time_step_rank: 3, mixer_rms_eps: 0.03, tie_word_embeddings: false };

async function open() {
  const dir = path.join(scratch, `m${seed}`);
  writeRandomMamba1(dir, RAW, seed);
  const files = await folderModelFiles(dir);
  const inspection = await inspectModel(files);
  const table = await readAllTensorsF32(files, inspection);
  await files.close();
  return { inspection, table };
}

describe(`Falcon-Mamba checkpoints (seed ${seed})`, () => {
  it('inspect and info name it Falcon-Mamba, with its mixer norm eps', async () => {
    const { inspection } = await open();
    expect(inspection).toMatchObject({ architecture: 'falcon_mamba', format: 'safetensors', tiedHead: false });
    const summary = summarizeInspection(inspection);
    expect(summary).toMatchObject({ architecture: 'falcon_mamba', label: 'Falcon-Mamba' });
    expect(summary.config).toMatchObject({ mixerRmsEps: 0.03, dtRank: 3, dState: 7, dInner: 48 });
  });

  it('the float64 reference normalizes dt_r, B and C before dt_proj and the scan', async () => {
    const { inspection, table } = await open();
    const c = inspection.config;
    const rand = mulberry32(seed + 1);
    const ids = Array.from({ length: 19 }, () => Math.floor(rand() * c.vocabSize));
    const w = (n: string) => table.get(n);
    const falcon = referenceForward(c, w, ids).layers[0]!;
    const plain = referenceForward({ ...c, mixerRmsEps: 0 }, w, ids).layers[0]!;
    const { dState: N, dInner: Di, dtRank: R, mixerRmsEps: eps } = c;
    const rms = (v: ArrayLike<number>) => Array.from(v, (x) => x / Math.sqrt(Array.from(v).reduce((s, y) => s + y * y, 0) / v.length + eps));
    // x (the conv output) does not depend on the norm in layer 0; B and C are the plain ones normalized.
    expect(Array.from(falcon.x!)).toEqual(Array.from(plain.x!));
    const xProj = table.get('backbone.layers.0.mixer.x_proj.weight')!;
    const dtW = table.get('backbone.layers.0.mixer.dt_proj.weight')!;
    const dtB = table.get('backbone.layers.0.mixer.dt_proj.bias')!;
    for (let t = 0; t < ids.length; t++) {
      for (const k of ['B', 'C']) {
        const raw = Array.from({ length: N }, (_, n) => plain[k]![t * N + n]!);
        const got = Array.from({ length: N }, (_, n) => falcon[k]![t * N + n]!);
        rms(raw).forEach((v, n) => expect(got[n], `${k}[${t}, ${n}]`).toBeCloseTo(v, 12));
      }
      // Δ from the normalized dt_r, computed here from x and the weights.
      const x = Array.from({ length: Di }, (_, d) => falcon.x![t * Di + d]!);
      const dtr = rms(Array.from({ length: R }, (_, r) => x.reduce((s, xv, d) => s + xProj[r * Di + d]! * xv, 0)));
      for (const d of [0, 17, Di - 1]) {
        const pre = dtB[d]! + dtr.reduce((s, v, r) => s + dtW[d * R + r]! * v, 0);
        expect(falcon.delta![t * Di + d]).toBeCloseTo(softplus(pre), 12);
      }
    }
  });
});
