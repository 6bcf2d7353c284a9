/**
 * The bench's large shapes (app/bench/bench.ts SHAPES) are the public checkpoints' configs, read
 * through the same canonicalConfig as a real config.json: the values below are the cited configs'
 * (state-spaces/mamba-2.8b-hf, state-spaces/mamba2-2.7b, tiiuae/falcon-mamba-7b config.json), and
 * the parameter counts those model cards publish (2.77B for mamba-2.8b, 7.27B for falcon-mamba-7b).
 */
import { describe, expect, it } from 'vitest';
import { randomInspection, shapeConfig } from '../../app/bench/bench';
import { describeWeightFormats, weightFormats } from '../../app/model/memory';

const parameters = (name: string) => randomInspection(shapeConfig(name)).parameters;

describe('bench shapes', () => {
  it('mamba-2.8b: d_model 2560, 64 layers, d_inner 5120, d_state 16, dt_rank 160, vocab 50280, tied', () => {
    expect(shapeConfig('mamba-2.8b')).toMatchObject({ architecture: 'mamba', dModel: 2560, nLayer: 64, dInner: 5120, dState: 16, dtRank: 160, dConv: 4, vocabSize: 50280, tieEmbeddings: true });
    expect(parameters('mamba-2.8b') / 1e9).toBeCloseTo(2.77, 2);
  });

  it('mamba2-2.7b: 80 heads of 64, 1 group, d_state 128, chunk 256, vocab 50288, tied', () => {
    expect(shapeConfig('mamba2-2.7b')).toMatchObject({ architecture: 'mamba2', dModel: 2560, nLayer: 64, dInner: 5120, dState: 128, nHeads: 80, headDim: 64, nGroups: 1, chunkSize: 256, vocabSize: 50288, tieEmbeddings: true });
  });

  it('falcon-mamba-7b: d_inner 8192, dt_rank 256, vocab 65024, its own LM head, mixer_rms_eps 1e-6', () => {
    expect(shapeConfig('falcon-mamba-7b')).toMatchObject({ architecture: 'falcon_mamba', dModel: 4096, nLayer: 64, dInner: 8192, dState: 16, dtRank: 256, vocabSize: 65024, tieEmbeddings: false, mixerRmsEps: 1e-6, useBias: false, useConvBias: true });
    expect(parameters('falcon-mamba-7b') / 1e9).toBeCloseTo(7.27, 2);
  });

  it('at these shapes in_proj, out_proj, embedding and LM head take the block format (rows are whole super-blocks); x_proj and dt_proj stay fp32 as llama.cpp writes them', () => {
    for (const [shape, formats] of [
      ['mamba-2.8b', 'q4_k + fp32'],
      ['mamba2-2.7b', 'q4_k'],
      ['falcon-mamba-7b', 'q4_k + fp32'],
    ] as const) {
      const inspection = randomInspection(shapeConfig(shape), 'q4_k');
      expect(describeWeightFormats(weightFormats('auto', inspection), inspection), shape).toBe(formats);
      const f = weightFormats('auto', inspection);
      for (const [name, format] of f) if (/(in_proj|out_proj)\.weight$|embeddings\.weight$|^lm_head\.weight$/.test(name)) expect(format, name).toBe('q4_k');
      for (const [name, format] of f) if (/(x_proj|dt_proj)\.weight$/.test(name)) expect(format, name).toBe('f32');
    }
  });
});
