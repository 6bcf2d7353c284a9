/**
 * Hybrid configs as the studio reads them (app/arch/nemotron-h, app/arch/granite-hybrid,
 * app/arch/hybrid/blocks.ts for mamba_ssm's attn_layer_idx): the blocks and their settings from
 * each convention, and clear refusals of what is not supported (MoE layers, LayerNorm, non-causal
 * attention, unknown layer kinds) naming the file and the key.
 */
import { describe, expect, it } from 'vitest';
import { canonicalConfig } from '../../app/arch/registry';
import { expectedTensors } from '../../app/arch/tensors';
import { configBlocks, withContext } from '../../app/model/config';
import { gpuMemoryNeed } from '../../app/model/memory';

const nemotron = {
  model_type: 'nemotron_h', vocab_size: 100, hidden_size: 32, hybrid_override_pattern: 'M*-M', num_attention_heads: 4, num_key_value_heads: 2,
  attention_head_dim: 12, intermediate_size: 48, mamba_num_heads: 4, mamba_head_dim: 16, n_groups: 2, ssm_state_size: 8, max_position_embeddings: 100_000,
};

describe('hybrid configs', () => {
  it('Nemotron-H: the pattern (or layers_block_type, old or new names) gives the blocks; Δ ≥ time_step_min; the KV cache bounded', () => {
    const c = canonicalConfig('config.json', nemotron);
    expect(configBlocks(c).map((b) => b.kind)).toEqual(['ssm', 'attention', 'mlp', 'ssm']);
    expect(c.nLayer).toBe(4);
    expect(c.dInner).toBe(64);
    expect(c.normGroupSize).toBe(32);
    expect(c.timeStepLimit).toEqual([0.001, Infinity]);
    expect(c.hybrid!.attention).toMatchObject({ nHeads: 4, nKvHeads: 2, headDim: 12, rotaryDim: 0, scale: 1 / Math.sqrt(12), capacity: 16_384 });
    expect(c.hybrid!.mlp).toMatchObject({ intermediate: 48, activation: 'relu2', gated: false });
    const listed = canonicalConfig('config.json', { ...nemotron, hybrid_override_pattern: undefined, layers_block_type: ['mamba', 'attention', 'mlp', 'linear_attention'] });
    expect(configBlocks(listed).map((b) => b.kind)).toEqual(['ssm', 'attention', 'mlp', 'ssm']);
    const names = expectedTensors(c, 'backbone.embeddings.weight').map((t) => t.name);
    expect(names).toContain('backbone.layers.1.mixer.q_proj.weight');
    expect(names).toContain('backbone.layers.2.mixer.up_proj.weight');
    expect(names).toContain('backbone.layers.3.mixer.A_log');
    expect(names).not.toContain('backbone.layers.1.mixer.A_log');
  });

  it('Nemotron-H: MoE layers, unknown kinds and relu-less MLPs are refused by name', () => {
    expect(() => canonicalConfig('a/config.json', { ...nemotron, hybrid_override_pattern: 'M*E-' })).toThrow(/a\/config\.json: layer 2 is a mixture-of-experts block/);
    expect(() => canonicalConfig('a/config.json', { ...nemotron, hybrid_override_pattern: 'M*X' })).toThrow(/"hybrid_override_pattern" has "X" at 2/);
    expect(() => canonicalConfig('a/config.json', { ...nemotron, hybrid_override_pattern: undefined })).toThrow(/neither "layers_block_type" nor a "hybrid_override_pattern"/);
    expect(() => canonicalConfig('a/config.json', { ...nemotron, mlp_hidden_act: 'gelu' })).toThrow(/"mlp_hidden_act" is "gelu"/);
    expect(() => canonicalConfig('a/config.json', { ...nemotron, num_key_value_heads: 3 })).toThrow(/"num_key_value_heads" is 3: key\/value heads must divide the 4 attention heads/);
  });

  it('mamba_ssm: attn_layer_idx and d_intermediate make attention and MLP blocks (MLP rounded up to 128)', () => {
    const raw = {
      d_model: 32, n_layer: 3, vocab_size: 96, d_intermediate: 100, ssm_cfg: { layer: 'Mamba2', headdim: 16, d_state: 8 }, attn_layer_idx: [1],
      attn_cfg: { num_heads: 4, num_heads_kv: 2, head_dim: 8, causal: true, rotary_emb_dim: 4, d_conv: 4 },
    };
    const c = canonicalConfig('config.json', raw);
    expect(configBlocks(c).map((b) => `${b.kind}:${b.mixer}`)).toEqual(['ssm:layers.0.mixer.', 'mlp:layers.0.mlp.', 'attention:layers.1.mixer.', 'mlp:layers.1.mlp.', 'ssm:layers.2.mixer.', 'mlp:layers.2.mlp.']);
    expect(c.nLayer).toBe(6);
    expect(c.hybrid!.mlp).toMatchObject({ intermediate: 128, gated: true, gateFirst: false });
    expect(c.hybrid!.attention).toMatchObject({ rotaryDim: 4, dConv: 4, names: { qkv: 'in_proj.weight' } });
    const specs = expectedTensors(c, 'backbone.embedding.weight');
    expect(specs.find((t) => t.name === 'backbone.layers.1.mixer.in_proj.weight')!.shape).toEqual([(4 + 4) * 8, 32]);
    expect(specs.find((t) => t.name === 'backbone.layers.1.mixer.conv1d.weight')!.shape).toEqual([64, 1, 4]);
    expect(specs.find((t) => t.name === 'backbone.layers.0.mlp.fc1.weight')!.shape).toEqual([256, 32]);
    expect(() => canonicalConfig('b.json', { ...raw, attn_cfg: { ...raw.attn_cfg, causal: false } })).toThrow(/b\.json: "attn_cfg\.causal" is false/);
    expect(() => canonicalConfig('b.json', { ...raw, attn_layer_idx: [3] })).toThrow(/"attn_layer_idx" holds 3: not a layer index below n_layer 3/);
    expect(() => canonicalConfig('b.json', { ...raw, rms_norm: false })).toThrow(/LayerNorm blocks are not supported/);
  });

  it('Granite-4.0-H: two blocks a layer, multipliers, RoPE θ; MoE refused', () => {
    const raw = {
      model_type: 'granitemoehybrid', vocab_size: 64, hidden_size: 32, num_hidden_layers: 2, layer_types: ['mamba', 'attention'], num_attention_heads: 4,
      num_key_value_heads: 1, shared_intermediate_size: 40, num_local_experts: 0, mamba_n_heads: 4, mamba_d_head: 16, mamba_n_groups: 1, mamba_d_state: 8,
      position_embedding_type: 'rope', rope_theta: 5000, embedding_multiplier: 12, residual_multiplier: 0.22, attention_multiplier: 0.015625, logits_scaling: 8,
    };
    const c = canonicalConfig('config.json', raw);
    expect(configBlocks(c).map((b) => `${b.kind}:${b.norm}`)).toEqual(['ssm:layers.0.input_layernorm.weight', 'mlp:layers.0.post_attention_layernorm.weight', 'attention:layers.1.input_layernorm.weight', 'mlp:layers.1.post_attention_layernorm.weight']);
    expect(c.multipliers).toEqual({ embedding: 12, residual: 0.22, logits: 1 / 8 });
    expect(c.hybrid!.attention).toMatchObject({ rotaryDim: 8, ropeTheta: 5000, scale: 0.015625 });
    expect(c.finalNorm).toBe('norm.weight');
    expect(expectedTensors(c, 'model.embed_tokens.weight').map((t) => t.name)).toContain('model.norm.weight');
    expect(() => canonicalConfig('g.json', { ...raw, num_local_experts: 62 })).toThrow(/g\.json: "num_local_experts" is 62: Granite-4\.0-H mixture-of-experts layers/);
    expect(() => canonicalConfig('g.json', { ...raw, rope_scaling: { rope_type: 'yarn' } })).toThrow(/RoPE type "yarn" is not supported/);
  });

  it('the memory need counts the KV caches of the attention blocks and only the SSM blocks\' state', () => {
    const c = canonicalConfig('config.json', { ...nemotron, max_position_embeddings: 1000 });
    const inspection = { config: c, tensors: new Map(), embeddingName: 'backbone.embeddings.weight' } as unknown as Parameters<typeof gpuMemoryNeed>[0];
    const need = gpuMemoryNeed(inspection);
    // one attention block: keys and values 1,000 × 2 kv heads × 12, a u32 mask per position, the length.
    expect(need.kvCache).toBe(4 * (2 * 1000 * 2 * 12 + 1000 + 4));
    expect(need.kvTokens).toBe(1000);
    // The user's context choice sizes the caches (and only a hybrid's): 4× the tokens, 4× the keys and values.
    const longer = gpuMemoryNeed({ ...inspection, config: withContext(c, 4000) });
    expect(longer.kvTokens).toBe(4000);
    expect(longer.kvCache).toBe(4 * (2 * 4000 * 2 * 12 + 4000 + 4));
    const plain = canonicalConfig('config.json', { model_type: 'mamba', vocab_size: 10, hidden_size: 8, num_hidden_layers: 1 });
    expect(withContext(plain, 4000)).toBe(plain);
    expect(() => withContext(c, 0)).toThrow(/the context must be a whole number of tokens from 1 to 1,048,576, got 0/);
  });
});
