import { describe, expect, it } from 'vitest';
import { parseConfigJson } from '../../app/formats/config';
import { canonicalConfig } from '../../app/arch/registry';
import { checkWeights, expectedTensors } from '../../app/arch/tensors';

describe('config.json → canonical MambaConfig', () => {
  it('reads a transformers MambaConfig (mamba-130m-hf shapes), with auto time_step_rank', () => {
    const c = canonicalConfig('config.json', {
      model_type: 'mamba', hidden_size: 768, num_hidden_layers: 24, vocab_size: 50280, state_size: 16,
      expand: 2, conv_kernel: 4, time_step_rank: 'auto', use_bias: false, use_conv_bias: true, layer_norm_epsilon: 1e-5,
    });
    expect(c).toMatchObject({ architecture: 'mamba', source: 'transformers', dModel: 768, dInner: 1536, dtRank: 48, dState: 16, tieEmbeddings: true });
  });

  it('reads a Mamba2Config with a bare Infinity and with the {"__float__"} form', () => {
    const text = `{"model_type": "mamba2", "hidden_size": 768, "num_hidden_layers": 24, "vocab_size": 50288,
      "num_heads": 24, "head_dim": 64, "n_groups": 1, "state_size": 128, "time_step_limit": [0.0, Infinity],
      "note": "Infinity inside a string stays a string"}`;
    const raw = parseConfigJson('config.json', text);
    expect(raw.note).toBe('Infinity inside a string stays a string');
    const c = canonicalConfig('config.json', raw);
    expect(c).toMatchObject({ architecture: 'mamba2', nHeads: 24, headDim: 64, nGroups: 1, chunkSize: 256, timeStepLimit: [0, Infinity] });
    const other = parseConfigJson('c.json', '{"time_step_limit": [0.0, {"__float__": "Infinity"}], "x": -Infinity}');
    expect(other).toEqual({ time_step_limit: [0, Infinity], x: -Infinity });
  });

  it('reads a transformers FalconMambaConfig (tiiuae/falcon-mamba-7b): Mamba-1 shapes plus the mixer norm eps', () => {
    // The fields of falcon-mamba-7b's config.json that matter (its Hub file, transformers' FalconMambaConfig).
    const seven = {
      architectures: ['FalconMambaForCausalLM'], model_type: 'falcon_mamba', hidden_size: 4096, num_hidden_layers: 64, vocab_size: 65024,
      state_size: 16, expand: 16, conv_kernel: 4, time_step_rank: 256, intermediate_size: 8192, layer_norm_epsilon: 1e-5, mixer_rms_eps: 1e-6,
      use_bias: false, use_conv_bias: true, tie_word_embeddings: false, use_falcon_mambapy: false, use_mambapy: false,
    };
    // The Hub file says expand 16 beside intermediate_size 8192; FalconMambaConfig keeps intermediate_size (Mamba would refuse it).
    const c = canonicalConfig('config.json', seven);
    expect(c).toEqual({
      architecture: 'falcon_mamba', source: 'transformers', dModel: 4096, nLayer: 64, vocabSize: 65024, dInner: 8192, dState: 16, dConv: 4, dtRank: 256,
      nHeads: 0, headDim: 0, nGroups: 0, chunkSize: 0, timeStepLimit: [0, Infinity], normGroupSize: 0, normEps: 1e-5, mixerRmsEps: 1e-6,
      useBias: false, useConvBias: true, tieEmbeddings: false,
    });
    // By class name alone; defaults as transformers' FalconMambaConfig: mixer_rms_eps 1e-6, tie_word_embeddings true, dt_rank auto.
    const byClass = canonicalConfig('config.json', { architectures: ['FalconMambaForCausalLM'], hidden_size: 40, num_hidden_layers: 2, vocab_size: 251 });
    expect(byClass).toMatchObject({ architecture: 'falcon_mamba', mixerRmsEps: 1e-6, tieEmbeddings: true, dtRank: 3, dState: 16 });
    // A plain Mamba config never gets the norm, whatever keys it carries.
    expect(canonicalConfig('config.json', { model_type: 'mamba', hidden_size: 8, num_hidden_layers: 1, vocab_size: 4, mixer_rms_eps: 0.1 }).mixerRmsEps).toBe(0);
    expect(() => canonicalConfig('config.json', { ...seven, model_type: 'mamba', architectures: ['MambaForCausalLM'] })).toThrow(
      'config.json: "intermediate_size" 8192 ≠ expand × hidden_size = 65536',
    );
  });

  it.each([
    [{ mixer_rms_eps: 0 }, 'config.json: "mixer_rms_eps" is 0: the mixer norm epsilon must be > 0 and ≤ 1'],
    [{ mixer_rms_eps: -1e-6 }, 'config.json: "mixer_rms_eps" is -0.000001: the mixer norm epsilon must be > 0 and ≤ 1'],
    [{ mixer_rms_eps: 2 }, 'config.json: "mixer_rms_eps" is 2: the mixer norm epsilon must be > 0 and ≤ 1'],
    [{ mixer_rms_eps: Infinity }, 'config.json: "mixer_rms_eps" is Infinity: the mixer norm epsilon must be > 0 and ≤ 1'],
    [{ mixer_rms_eps: '1e-6' }, 'config.json: "mixer_rms_eps" must be a number, got "1e-6"'],
    [{ mixer_rms_eps: NaN }, 'config.json: "mixer_rms_eps" must be a number'],
    [{ time_step_rank: 0 }, 'config.json: "time_step_rank" is 0'],
    [{ state_size: 1e9 }, 'config.json: "state_size" is 1000000000'],
    [{ intermediate_size: 0 }, 'config.json: "intermediate_size" is 0: inner channels (d_inner) must be an integer from 1'],
    [{ intermediate_size: 80.5 }, 'config.json: "intermediate_size" must be a non-negative integer, got 80.5'],
  ])('refuses a bad Falcon-Mamba config, naming the file and key: %j', (bad, message) => {
    const raw = { model_type: 'falcon_mamba', hidden_size: 40, num_hidden_layers: 2, vocab_size: 251, ...bad };
    expect(() => canonicalConfig('config.json', raw)).toThrow(message);
  });

  it('a Falcon-Mamba config is never read as mamba_ssm\'s', () => {
    expect(() => canonicalConfig('config.json', { d_model: 8, n_layer: 1, vocab_size: 4, ssm_cfg: { layer: null } })).not.toThrow();
    expect(() => canonicalConfig('config.json', { d_model: 8, n_layer: 1, vocab_size: 4, ssm_cfg: { layer: 'FalconMamba' } })).toThrow(
      'config.json: "ssm_cfg.layer" is "FalconMamba"; the studio runs "Mamba1", "Mamba2"',
    );
  });

  it('reads an original mamba_ssm config and pads the vocabulary', () => {
    const m1 = canonicalConfig('config.json', { d_model: 768, n_layer: 24, vocab_size: 50277, ssm_cfg: {}, pad_vocab_size_multiple: 8 });
    expect(m1).toMatchObject({ architecture: 'mamba', source: 'mamba_ssm', vocabSize: 50280, dtRank: 48, tieEmbeddings: true });
    const m2 = canonicalConfig('config.json', { d_model: 768, n_layer: 24, vocab_size: 50277, ssm_cfg: { layer: 'Mamba2' }, pad_vocab_size_multiple: 16 });
    expect(m2).toMatchObject({ architecture: 'mamba2', vocabSize: 50288, nHeads: 24, headDim: 64, nGroups: 1, dState: 128 });
  });

  it.each([
    [{ model_type: 'llama', architectures: ['LlamaForCausalLM'] }, 'config.json: describes a Llama model (LlamaForCausalLM), not Mamba or Mamba-2'],
    [{ model_type: 'jamba' }, 'config.json: describes a Jamba (a hybrid, not supported) model, not Mamba or Mamba-2'],
    [{ foo: 1 }, 'config.json: is not a Mamba config: no model_type, architectures or d_model'],
    [{ model_type: 'mamba', hidden_size: 64, vocab_size: 10 }, 'config.json: missing required key "num_hidden_layers"'],
    [{ model_type: 'mamba', hidden_size: '64', num_hidden_layers: 2, vocab_size: 10 }, 'config.json: "hidden_size" must be a non-negative integer, got "64"'],
    [{ model_type: 'mamba2', hidden_size: 64, num_hidden_layers: 2, vocab_size: 10, num_heads: 3, head_dim: 64 }, 'config.json: num_heads × head_dim = 3 × 64 = 192 ≠ expand × hidden_size = 128'],
  ])('explains a bad config: %j', (raw, message) => {
    expect(() => canonicalConfig('config.json', raw)).toThrow(message);
  });

  it('names the file for garbage JSON', () => {
    expect(() => parseConfigJson('m/config.json', '{"a":')).toThrow(/^m\/config\.json: not valid JSON/);
  });
});

describe('weight map', () => {
  const config = canonicalConfig('config.json', { model_type: 'mamba', hidden_size: 8, num_hidden_layers: 2, vocab_size: 11, state_size: 4 });
  const full = () => new Map(expectedTensors(config, 'backbone.embeddings.weight').filter((s) => !s.optional).map((s) => [s.name, { shape: s.shape }]));

  it('accepts a complete file under either naming scheme; no lm_head means a tied head', () => {
    const check = checkWeights('m.safetensors', config, full());
    expect(check).toMatchObject({ tiedHead: true, warnings: [] });
    const original = new Map([...full()].map(([k, v]) => [k.replace('embeddings', 'embedding'), v]));
    expect(checkWeights('m.safetensors', config, original).embeddingName).toBe('backbone.embedding.weight');
  });

  it('reports every missing tensor and shape mismatch at once, and extra tensors as warnings', () => {
    const tensors = full();
    tensors.delete('backbone.layers.1.mixer.A_log');
    tensors.delete('backbone.norm_f.weight');
    tensors.set('backbone.layers.0.mixer.x_proj.weight', { shape: [9, 15] });
    expect(() => checkWeights('m.safetensors', config, tensors)).toThrow(
      'm.safetensors: 3 problem(s) with the weights: missing tensor backbone.norm_f.weight [8]; ' +
        'tensor backbone.layers.0.mixer.x_proj.weight has shape [9, 15], expected [9, 16]; ' +
        'missing tensor backbone.layers.1.mixer.A_log [16, 4]',
    );
    const extra = full();
    extra.set('backbone.layers.0.mixer.rotary.weight', { shape: [2] });
    expect(checkWeights('m.safetensors', config, extra).warnings).toEqual(['m.safetensors: unexpected tensor backbone.layers.0.mixer.rotary.weight (ignored)']);
  });
});
