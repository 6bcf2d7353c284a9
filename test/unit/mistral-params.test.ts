/**
 * Mamba-Codestral's files: mistral's params.json (read as the mamba_ssm config mistral-inference
 * builds from it) and consolidated.safetensors ("model." + mamba_ssm's names), beside or instead
 * of transformers' config.json + model-*.safetensors. Expected values come from the model's
 * published sizes (issue 16: d_model 4096, 64 layers, 128 heads × 64, state 128, chunk 256,
 * vocabulary 32768) and from the Hub repo's own config.json (transcribed below), not from the code
 * under test.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectModel, modelVariant, summarizeInspection } from '../../app/arch/inspect';
import { mistralParamsConfig } from '../../app/arch/mistral-params';
import { canonicalConfig } from '../../app/arch/registry';
import { expectedTensors } from '../../app/arch/tensors';
import { parseConfigJson } from '../../app/formats/config';
import { ModelFileError } from '../../app/formats/errors';
import { modelOwnFiles } from '../../app/library/model-files';
import type { MambaConfig } from '../../app/model/config';
import { openFileSource } from '../../app/node/file-source';
import { folderModelFiles, openedModelFiles } from '../../app/node/folder';
import { writeSafetensors, type TestTensor } from '../support/safetensors-writer';

/** mistralai/Mamba-Codestral-7B-v0.1 params.json (the fields mistral-inference's MambaArgs has). */
const CODESTRAL_PARAMS = {
  dim: 4096, n_layers: 64, vocab_size: 32768, n_groups: 8, rms_norm: true, residual_in_fp32: true, fused_add_norm: true,
  pad_vocab_size_multiple: 1, tie_embeddings: false, model_type: 'mamba',
};
/** The same repo's transformers config.json (as copied by mlx-community/Mamba-Codestral-7B-v0.1-8bit, quantization keys left out). */
const CODESTRAL_CONFIG_JSON = `{
  "architectures": ["Mamba2ForCausalLM"], "bos_token_id": 0, "chunk_size": 256, "conv_kernel": 4, "eos_token_id": 0,
  "expand": 2, "head_dim": 64, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.1,
  "intermediate_size": 8192, "layer_norm_epsilon": 1e-05, "model_type": "mamba2", "n_groups": 8, "norm_before_gate": true,
  "num_heads": 128, "num_hidden_layers": 64, "pad_token_id": 0, "rescale_prenorm_residual": false, "residual_in_fp32": true,
  "rms_norm": true, "state_size": 128, "tie_word_embeddings": false, "time_step_floor": 0.0001, "time_step_init_scheme": "random",
  "time_step_limit": [0.0, Infinity], "time_step_max": 0.1, "time_step_min": 0.001, "time_step_rank": 256,
  "time_step_scale": 1.0, "torch_dtype": "bfloat16", "use_bias": false, "use_cache": true, "use_conv_bias": true, "vocab_size": 32768
}`;

const FILE = '/models/codestral/params.json';
const refusal = (raw: Record<string, unknown>) => {
  try {
    mistralParamsConfig(FILE, raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ModelFileError);
    return (error as Error).message;
  }
  throw new Error('accepted');
};

describe("mistral's params.json", () => {
  it('reads Mamba-Codestral as mamba_ssm builds it: Mamba-2, 8 groups, the gated norm per group of d_inner / 8', () => {
    const c = mistralParamsConfig(FILE, CODESTRAL_PARAMS);
    expect(c).toMatchObject({
      architecture: 'mamba2', source: 'mamba_ssm', dModel: 4096, nLayer: 64, vocabSize: 32768, dInner: 8192, nHeads: 128, headDim: 64,
      nGroups: 8, dState: 128, chunkSize: 256, dConv: 4, normGroupSize: 1024, normEps: 1e-5, timeStepLimit: [0, Infinity],
      useBias: false, useConvBias: true, tieEmbeddings: false,
    });
    expect(modelVariant({ config: c, format: 'safetensors', weightFiles: ['consolidated.safetensors'] })).toBe(
      'Mamba-2, 8 groups, gated norm per group of 1024; mistral params.json + consolidated.safetensors',
    );
  });

  it("wants the same tensors as the repo's transformers config.json, which runs the norm over all of d_inner", () => {
    const fromParams = mistralParamsConfig(FILE, CODESTRAL_PARAMS);
    const fromHf = canonicalConfig('/models/codestral/config.json', parseConfigJson('config.json', CODESTRAL_CONFIG_JSON));
    const sameShape = (c: MambaConfig) => expectedTensors(c, 'backbone.embedding.weight').map((t) => `${t.name} ${t.shape.join('×')}`);
    expect(sameShape(fromParams)).toEqual(sameShape(fromHf));
    expect(expectedTensors(fromParams, 'backbone.embedding.weight').find((t) => t.name === 'backbone.layers.63.mixer.in_proj.weight')?.shape).toEqual([
      2 * 8192 + 2 * 8 * 128 + 128, 4096,
    ]);
    expect(fromHf.normGroupSize).toBe(8192);
    expect(modelVariant({ config: fromHf, format: 'safetensors', weightFiles: ['model-00001-of-00003.safetensors'] })).toBe(
      'Mamba-2, 8 groups, gated norm over all of d_inner (as transformers); transformers config.json + safetensors',
    );
  });

  it('pads the vocabulary as mamba_ssm does', () => {
    expect(mistralParamsConfig(FILE, { ...CODESTRAL_PARAMS, vocab_size: 32001, pad_vocab_size_multiple: 16 }).vocabSize).toBe(32016);
  });

  it.each([
    [{ model_type: undefined }, /params\.json: has no "model_type": mistral-inference reads it as a Transformer/],
    [{ model_type: 'transformer' }, /params\.json: "model_type" is "transformer": the studio reads mistral params\.json files of "mamba" models/],
    [{ dim: undefined }, /params\.json: missing required key "dim"/],
    [{ n_groups: null }, /params\.json: missing required key "n_groups"/],
    [{ tie_embeddings: undefined }, /params\.json: missing required key "tie_embeddings"/],
    [{ dim: '4096' }, /params\.json: "dim" must be a positive integer, got "4096"/],
    [{ dim: 0 }, /params\.json: "dim" must be a positive integer, got 0/],
    [{ n_layers: -3 }, /params\.json: "n_layers" must be a positive integer, got -3/],
    [{ vocab_size: 1.5 }, /params\.json: "vocab_size" must be a positive integer, got 1\.5/],
    [{ rms_norm: 'yes' }, /params\.json: "rms_norm" must be true or false/],
    [{ rms_norm: false }, /params\.json: "rms_norm" is false: mamba_ssm then normalizes with LayerNorm/],
    [{ dim: 100 }, /params\.json: "dim" 100: mamba_ssm's Mamba2 splits d_inner = 2 × dim = 200 into heads of 64/],
    [{ n_groups: 3 }, /params\.json: "n_groups" 3 does not divide the 128 heads/],
    [{ n_layers: 1e6 }, /params\.json: "n_layers" is 1000000: layers must be an integer from 1 to 4096/],
    [{ vocab_size: 2 ** 40 }, /params\.json: "vocab_size" is 1099511627776: vocabulary entries must be/],
    [{ dim: 2 ** 30 }, /params\.json: "dim" is 1073741824: the model width must be/],
  ])('refuses %j naming the file and the key', (change, message) => {
    expect(refusal({ ...CODESTRAL_PARAMS, ...change })).toMatch(message);
  });
});

/** A tiny Mamba-2 of mistral's form: 2 layers, dim 64 (2 heads of 64), n_groups 2, d_state 128, vocab 24. */
const TINY_PARAMS = { ...CODESTRAL_PARAMS, dim: 64, n_layers: 2, vocab_size: 24, n_groups: 2 };
const TINY_HF = {
  model_type: 'mamba2', hidden_size: 64, num_hidden_layers: 2, vocab_size: 24, num_heads: 2, head_dim: 64, n_groups: 2, state_size: 128,
  expand: 2, chunk_size: 256, tie_word_embeddings: false,
};

function tensorsFor(config: MambaConfig, embedding: string, prefix: string, fill: number): Record<string, TestTensor> {
  const out: Record<string, TestTensor> = {};
  for (const spec of expectedTensors(config, embedding)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    out[prefix + spec.name] = { dtype: 'F32', shape: spec.shape, data: new Float32Array(n).fill(fill) };
  }
  return out;
}

function mistralFolder(extra: (dir: string) => void = () => {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'codestral-'));
  writeFileSync(path.join(dir, 'params.json'), JSON.stringify(TINY_PARAMS));
  writeFileSync(path.join(dir, 'consolidated.safetensors'), writeSafetensors(tensorsFor(mistralParamsConfig('p', TINY_PARAMS), 'backbone.embedding.weight', 'model.', 1)));
  extra(dir);
  return dir;
}

function addTransformersFiles(dir: string): void {
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(TINY_HF));
  writeFileSync(path.join(dir, 'model.safetensors'), writeSafetensors(tensorsFor(canonicalConfig('c', TINY_HF), 'backbone.embeddings.weight', '', 2)));
}

async function inspectDir(dir: string, only?: string[]) {
  const files = only ? openedModelFiles(dir, dir, async () => only, (f) => openFileSource(path.join(dir, f))) : await folderModelFiles(dir);
  try {
    return await inspectModel(files);
  } finally {
    await files.close();
  }
}

describe('a folder with mistral’s files', () => {
  it('reads params.json + consolidated.safetensors, names without "model.", per-group norm', async () => {
    const inspection = await inspectDir(mistralFolder());
    expect(inspection.weightFiles).toEqual(['consolidated.safetensors']);
    expect(inspection.config).toMatchObject({ source: 'mamba_ssm', nGroups: 2, nHeads: 2, dState: 128, normGroupSize: 64, vocabSize: 24 });
    expect(inspection.embeddingName).toBe('backbone.embedding.weight');
    expect(inspection.tiedHead).toBe(false);
    expect([...inspection.tensors.keys()].every((n) => !n.startsWith('model.'))).toBe(true);
    expect(inspection.tensors.get('backbone.layers.1.mixer.in_proj.weight')).toMatchObject({ name: 'backbone.layers.1.mixer.in_proj.weight', file: 'consolidated.safetensors' });
    expect(inspection.warnings).toEqual([expect.stringMatching(/no tokenizer\.json; text prompts need one/)]);
    expect(summarizeInspection(inspection).variant).toBe('Mamba-2, 2 groups, gated norm per group of 64; mistral params.json + consolidated.safetensors');
  });

  it('with transformers’ files beside them reads only mistral’s, says so, and records only those', async () => {
    const dir = mistralFolder(addTransformersFiles);
    const inspection = await inspectDir(dir);
    expect(inspection.weightFiles).toEqual(['consolidated.safetensors']);
    expect(inspection.config.normGroupSize).toBe(64);
    // the transformers copy holds 2s, mistral's 1s: every tensor read must be mistral's
    expect([...inspection.tensors.values()].every((t) => t.file === 'consolidated.safetensors')).toBe(true);
    expect(inspection.warnings[0]).toMatch(/holds mistral's params\.json \+ consolidated\.safetensors and also config\.json, model\.safetensors; the studio reads mistral's/);
    const own = modelOwnFiles(inspection, ['config.json', 'consolidated.safetensors', 'model.safetensors', 'params.json', 'tokenizer.json', 'tokenizer.model.v3']);
    expect(own).toEqual(['consolidated.safetensors', 'params.json', 'tokenizer.json']);
    // The engine re-inspects from the recorded files and takes the same form.
    writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
    const again = await inspectDir(dir, own);
    expect(again.weightFiles).toEqual(['consolidated.safetensors']);
    expect(again.config).toEqual(inspection.config);
  });

  it('the transformers files alone run as transformers runs them, with a warning about the norm', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'codestral-hf-'));
    addTransformersFiles(dir);
    const inspection = await inspectDir(dir);
    expect(inspection.weightFiles).toEqual(['model.safetensors']);
    expect(inspection.config).toMatchObject({ source: 'transformers', normGroupSize: 128 });
    expect(inspection.warnings).toContainEqual(expect.stringMatching(/config\.json: n_groups 2: the gated RMSNorm runs over all 128 channels of d_inner, as transformers runs it; mamba_ssm, mistral-inference and llama\.cpp run it per group of 64/));
    expect(modelOwnFiles(inspection, ['config.json', 'model.safetensors', 'params.json'])).toEqual(['config.json', 'model.safetensors']);
  });

  it('a params.json without consolidated.safetensors leaves transformers’ files in charge; alone, it is refused', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'codestral-p-'));
    addTransformersFiles(dir);
    writeFileSync(path.join(dir, 'params.json'), JSON.stringify(TINY_PARAMS));
    expect((await inspectDir(dir)).config.source).toBe('transformers');
    const lone = mkdtempSync(path.join(tmpdir(), 'codestral-lone-'));
    writeFileSync(path.join(lone, 'params.json'), JSON.stringify(TINY_PARAMS));
    await expect(inspectDir(lone)).rejects.toThrow(`${path.join(lone, 'params.json')}: is mistral's format and needs its consolidated.safetensors beside it`);
  });

  it('a consolidated.safetensors without params.json is refused naming it', async () => {
    const dir = mistralFolder();
    await expect(inspectDir(dir, ['consolidated.safetensors'])).rejects.toThrow(`${path.join(dir, 'consolidated.safetensors')}: is mistral's format and needs its params.json beside it`);
  });

  it('refuses a broken params.json, and a tensor named twice once "model." is dropped, naming the file', async () => {
    const dir = mistralFolder((d) => writeFileSync(path.join(d, 'params.json'), '{"dim": 64,'));
    await expect(inspectDir(dir)).rejects.toThrow(new RegExp(`${path.join(dir, 'params.json').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not valid JSON`));
    const twice = mistralFolder((d) => {
      const t = tensorsFor(mistralParamsConfig('p', TINY_PARAMS), 'backbone.embedding.weight', 'model.', 1);
      t['backbone.norm_f.weight'] = t['model.backbone.norm_f.weight']!;
      writeFileSync(path.join(d, 'consolidated.safetensors'), writeSafetensors(t));
    });
    await expect(inspectDir(twice)).rejects.toThrow(/consolidated\.safetensors: tensor "(model\.)?backbone\.norm_f\.weight" appears twice/);
  });

  it("a SentencePiece or Tekken tokenizer without tokenizer.json: token ids only, and the warning names the file and what to add", async () => {
    for (const name of ['tokenizer.model.v3', 'tekken.json']) {
      const dir = mistralFolder((d) => writeFileSync(path.join(d, name), 'x'));
      const inspection = await inspectDir(dir);
      expect(inspection.tokenizer).toBe('none');
      expect(inspection.warnings).toEqual([
        `${path.join(dir, name)}: ${name === 'tekken.json' ? "mistral's Tekken tokenizer" : 'a SentencePiece tokenizer'}, which the studio does not read; ` +
          'text prompts need the tokenizer.json of the same model beside the weights (the Hub repo has one; token ids still work)',
      ]);
      expect(modelOwnFiles(inspection, ['consolidated.safetensors', 'params.json', name])).toEqual(['consolidated.safetensors', 'params.json', name].sort());
    }
    const both = mistralFolder((d) => {
      writeFileSync(path.join(d, 'tokenizer.model.v3'), 'x');
      writeFileSync(path.join(d, 'tokenizer.json'), '{}');
    });
    const inspection = await inspectDir(both);
    expect(inspection.tokenizer).toBe('tokenizer.json');
    expect(inspection.warnings).toEqual([]);
  });

  it('opening consolidated.safetensors itself takes its params.json from the folder', async () => {
    const dir = mistralFolder(addTransformersFiles);
    const files = await folderModelFiles(path.join(dir, 'consolidated.safetensors'));
    expect((await files.list()).sort()).toEqual(['config.json', 'consolidated.safetensors', 'params.json']);
    const inspection = await inspectModel(files);
    await files.close();
    expect(inspection.weightFiles).toEqual(['consolidated.safetensors']);
  });
});
