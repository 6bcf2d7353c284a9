/**
 * Issue 14, item 1: absurd sizes in a config (transformers, mamba_ssm, GGUF metadata) are refused
 * at the source — a prompt ModelFileError naming the file and the key, in a few milliseconds and
 * a few MiB of heap — before anything loops over a layer or allocates by a dimension; the
 * weight-check message stays short however many tensors are wrong; real checkpoints still pass.
 */
import { describe, expect, it } from 'vitest';
import { CONFIG_BOUNDS, MAX_CONFIG_BYTES, impliedParameters } from '../../app/arch/bounds';
import { inspectModel } from '../../app/arch/inspect';
import { architectureSpec, canonicalConfig } from '../../app/arch/registry';
import { checkWeights, expectedTensors, MAX_LISTED } from '../../app/arch/tensors';
import { ModelFileError } from '../../app/formats/errors';
import { CONV_KERNEL_SIZES } from '../../app/kernels/causal-conv1d';
import { GT, tinyModel, writeGguf, type WriterKv } from '../support/gguf-writer';
import { memoryModelFiles, tinyModelBytes } from '../support/memory-model';
import { TINY_CONFIG } from '../support/tiny-model';
import { measure, MiB } from '../support/within-budget';

/** What one reproducer may cost: the unbounded code took 51 s and 4.7 GB at 1e7 layers. */
const BUDGET = { ms: 250, heap: 16 * MiB };

async function refused(files: Record<string, Uint8Array | string>) {
  const m = await measure(() => inspectModel(memoryModelFiles('m', files)), true);
  expect(m.value).toBeUndefined();
  expect(m.error).toBeInstanceOf(ModelFileError);
  expect(m.ms).toBeLessThan(BUDGET.ms);
  expect(m.heapGrowth).toBeLessThan(BUDGET.heap);
  return m.error as ModelFileError;
}

/** A tiny GGUF Mamba whose metadata key `key` is replaced by a value of GGUF type `type`. */
function ggufWith(key: string, type: number, value: number | bigint): Uint8Array {
  const model = tinyModel({ arch: 'mamba' });
  const kv: WriterKv[] = model.spec.kv.map((e) => (e.key === key ? { key, type, value } : e));
  return writeGguf({ ...model.spec, kv });
}

describe('config bounds: absurd sizes are refused at the source', () => {
  it.each([1e7, 1e9, 2 ** 53, 1e308])('transformers num_hidden_layers %d: config.json and the key, promptly', async (layers) => {
    const error = await refused(tinyModelBytes({ ...TINY_CONFIG, num_hidden_layers: layers }));
    expect(error.file).toBe('m/config.json');
    expect(error.problem).toMatch(/^"num_hidden_layers" is [\d.e+]+: layers must be an integer from 1 to 4096$/);
  });

  it('mamba_ssm n_layer 1e7 and a vocabulary padded to 1e308', async () => {
    const ssm = { d_model: 8, n_layer: 1e7, vocab_size: 16, ssm_cfg: { d_state: 4 } };
    expect((await refused(tinyModelBytes(ssm))).message).toBe('m/config.json: "n_layer" is 10000000: layers must be an integer from 1 to 4096');
    const padded = await refused(tinyModelBytes({ ...ssm, n_layer: 2, vocab_size: 17, pad_vocab_size_multiple: 1e308 }));
    expect(padded.problem).toBe('"vocab_size (padded to a multiple of pad_vocab_size_multiple 1e+308)" is 1.000e+308: vocabulary entries must be an integer from 1 to 4194304');
  });

  it.each([
    ['block_count 2^32 − 1', 'mamba.block_count', GT.U32, 2 ** 32 - 1, '"mamba.block_count" is 4294967295: layers must be an integer from 1 to 4096'],
    ['block_count 1e9', 'mamba.block_count', GT.U32, 1e9, '"mamba.block_count" is 1000000000: layers must be an integer from 1 to 4096'],
    ['block_count 2^53', 'mamba.block_count', GT.U64, 2n ** 53n, 'metadata "mamba.block_count" must be an integer ≥ 1, got 9007199254740992'],
    ['block_count 1e308', 'mamba.block_count', GT.F64, 1e308, 'metadata "mamba.block_count" must be an integer ≥ 1, got 1e+308'],
    ['inner_size 2^31', 'mamba.ssm.inner_size', GT.U32, 2 ** 31, '"mamba.ssm.inner_size" is 2147483648: inner channels (d_inner) must be an integer from 1 to 262144'],
    ['embedding_length 2^20', 'mamba.embedding_length', GT.U32, 2 ** 20, '"mamba.embedding_length" is 1048576: the model width must be an integer from 1 to 65536'],
    ['state_size 1e6', 'mamba.ssm.state_size', GT.U32, 1e6, '"mamba.ssm.state_size" is 1000000: state entries (d_state) must be an integer from 1 to 4096'],
    ['time_step_rank 2^32 − 1', 'mamba.ssm.time_step_rank', GT.U32, 2 ** 32 - 1, '"mamba.ssm.time_step_rank" is 4294967295: the rank of Δ (dt_rank) must be an integer from 1 to 65536'],
  ])('GGUF %s: the file and the key, promptly', async (_, key, type, value, problem) => {
    const error = await refused({ 'model.gguf': ggufWith(key, type, value) });
    expect(error.file).toBe('m/model.gguf');
    expect(error.problem).toBe(problem);
  });

  it('GGUF: a vocabulary of 2^40 rows (a zero-width embedding, so no bytes) is refused by its tensor', async () => {
    const model = tinyModel({ arch: 'mamba' });
    const tensors = model.spec.tensors.map((t) => (t.name === 'token_embd.weight' ? { ...t, shape: [2 ** 40, 0], data: new Uint8Array(0) } : t));
    const error = await refused({ 'model.gguf': writeGguf({ ...model.spec, tensors }) });
    expect(error.problem).toBe('"token_embd.weight (its rows)" is 1099511627776: vocabulary entries must be an integer from 1 to 4194304');
  });

  it('the product of the sizes is bounded too (weights and state ≤ 1 TiB as float32), naming the keys', () => {
    const huge = { model_type: 'mamba', hidden_size: 65_536, num_hidden_layers: 4096, vocab_size: 4_000_000, state_size: 4096 };
    expect(() => canonicalConfig('config.json', huge)).toThrow(
      /^config\.json: the config implies [\d.e+]+ parameters and state entries \(hidden_size 65536, num_hidden_layers 4096, vocab_size 4000000, expand × hidden_size 131072, state_size 4096\): [\d.]+ TiB as float32, over the limit of 1 TiB$/,
    );
    // Each size alone is within its bound: only the product is refused.
    expect(huge.hidden_size).toBeLessThanOrEqual(CONFIG_BOUNDS.dModel.max);
    expect(huge.vocab_size).toBeLessThanOrEqual(CONFIG_BOUNDS.vocabSize.max);
  });

  it('admits real checkpoints: mamba-2.8b, Falcon-Mamba-7B, Codestral Mamba 7B, a 256k vocabulary, a 70B-sized Mamba', () => {
    const real = [
      { model_type: 'mamba', hidden_size: 2560, num_hidden_layers: 64, vocab_size: 50280, state_size: 16 },
      // tiiuae/falcon-mamba-7b's config.json (expand 16 beside intermediate_size 8192, as on the Hub).
      { model_type: 'falcon_mamba', hidden_size: 4096, num_hidden_layers: 64, vocab_size: 65024, state_size: 16, expand: 16, intermediate_size: 8192, time_step_rank: 256, tie_word_embeddings: false },
      { model_type: 'mamba2', hidden_size: 4096, num_hidden_layers: 64, vocab_size: 32768, num_heads: 128, head_dim: 64, n_groups: 8, state_size: 128 },
      { model_type: 'mamba2', hidden_size: 4096, num_hidden_layers: 56, vocab_size: 256_000, num_heads: 128, head_dim: 64, n_groups: 8, state_size: 128 },
      { model_type: 'mamba', hidden_size: 8192, num_hidden_layers: 160, vocab_size: 262_144, state_size: 16, tie_word_embeddings: false },
    ];
    const params = real.map((raw) => {
      const c = canonicalConfig('config.json', raw);
      return impliedParameters(c, architectureSpec(c.architecture));
    });
    expect(params[0]).toBeGreaterThan(2.7e9);
    // The model card says 7.27B parameters.
    expect(params[1]).toBeGreaterThan(7.26e9);
    expect(params[1]).toBeLessThan(7.28e9);
    expect(params[4]).toBeGreaterThan(70e9);
    expect(4 * (params[4] as number)).toBeLessThan(MAX_CONFIG_BYTES);
  });

  it('bounds d_conv by what the convolution kernel runs', () => {
    expect([CONFIG_BOUNDS.dConv.min, CONFIG_BOUNDS.dConv.max]).toEqual([CONV_KERNEL_SIZES.min, CONV_KERNEL_SIZES.max]);
    expect(() => canonicalConfig('config.json', { ...TINY_CONFIG, conv_kernel: 16 })).toThrow(
      'config.json: "conv_kernel" is 16: convolution taps (d_conv) must be an integer from 2 to 8',
    );
  });

  it.each([
    ['hidden_size 65537', { ...TINY_CONFIG, hidden_size: 65_537 }, '"hidden_size" is 65537: the model width must be an integer from 1 to 65536'],
    ['vocab_size 0', { ...TINY_CONFIG, vocab_size: 0 }, '"vocab_size" is 0: vocabulary entries must be an integer from 1 to 4194304'],
    ['expand −1', { ...TINY_CONFIG, expand: -1 }, '"expand × hidden_size" is -8: inner channels (d_inner) must be an integer from 1 to 262144'],
    ['expand Infinity', { ...TINY_CONFIG, expand: Infinity }, '"expand × hidden_size" is Infinity: inner channels (d_inner) must be an integer from 1 to 262144'],
    ['time_step_rank 0', { ...TINY_CONFIG, time_step_rank: 0 }, '"time_step_rank" is 0: the rank of Δ (dt_rank) must be an integer from 1 to 65536'],
    ['layer_norm_epsilon Infinity', { ...TINY_CONFIG, layer_norm_epsilon: Infinity }, '"layer_norm_epsilon" is Infinity: the norm epsilon must be > 0 and ≤ 1'],
    ['mamba_ssm d_state 5000', { d_model: 8, n_layer: 2, vocab_size: 16, ssm_cfg: { layer: 'Mamba2', headdim: 4, ngroups: 2, d_state: 5000 } }, '"ssm_cfg.d_state" is 5000: state entries (d_state) must be an integer from 1 to 4096'],
    ['chunk_size 2^40', { model_type: 'mamba2', hidden_size: 8, num_hidden_layers: 2, vocab_size: 16, num_heads: 4, head_dim: 4, n_groups: 2, state_size: 4, chunk_size: 2 ** 40 }, '"chunk_size" is 1099511627776: tokens per chunk (chunk_size) must be an integer from 1 to 65536'],
  ])('refuses %s, naming the key', (_, raw, problem) => {
    expect(() => canonicalConfig('config.json', raw)).toThrow(`config.json: ${problem}`);
  });

  it('the weight check names the first problems and counts the rest (a capped message at the deepest config)', () => {
    const deepest = canonicalConfig('config.json', { ...TINY_CONFIG, num_hidden_layers: CONFIG_BOUNDS.nLayer.max });
    const onlyEmbedding = new Map([['backbone.embeddings.weight', { shape: [16, 8] }]]);
    const m = (() => {
      try {
        checkWeights('m.safetensors', deepest, onlyEmbedding);
      } catch (error) {
        return error as ModelFileError;
      }
      throw new Error('expected a ModelFileError');
    })();
    const perLayer = expectedTensors(canonicalConfig('c', TINY_CONFIG), 'backbone.embeddings.weight').filter((s) => s.name.startsWith('backbone.layers.0.')).length;
    const total = 1 + perLayer * CONFIG_BOUNDS.nLayer.max; // norm_f and every layer's tensors
    expect(m.message).toMatch(new RegExp(`^m\\.safetensors: ${total} problem\\(s\\) with the weights: missing tensor backbone\\.norm_f\\.weight \\[8\\]; `));
    expect(m.message.endsWith(`; and ${total - MAX_LISTED} more`)).toBe(true);
    expect(m.message.split('; ').length).toBe(MAX_LISTED + 1);
    expect(m.message.length).toBeLessThan(2000);
  });

  it('1e5 layers (a 62 MB error line before) is now one short line', async () => {
    const error = await refused(tinyModelBytes({ ...TINY_CONFIG, num_hidden_layers: 1e5 }));
    expect(error.message).toBe('m/config.json: "num_hidden_layers" is 100000: layers must be an integer from 1 to 4096');
  });

  it('extra tensors are listed up to the cap, then counted', () => {
    const c = canonicalConfig('config.json', TINY_CONFIG);
    const tensors = new Map(expectedTensors(c, 'backbone.embeddings.weight').filter((s) => !s.optional).map((s) => [s.name, { shape: s.shape }]));
    for (let i = 0; i < 5000; i++) tensors.set(`extra.${i}`, { shape: [1] });
    const { warnings } = checkWeights('m.safetensors', c, tensors);
    expect(warnings).toHaveLength(MAX_LISTED + 1);
    expect(warnings[MAX_LISTED]).toBe(`m.safetensors: and ${5000 - MAX_LISTED} more unexpected tensors (ignored)`);
  });

  it('expectedTensors checks the bounds itself before its loop (configs that did not come through a reader)', () => {
    const c = { ...canonicalConfig('config.json', TINY_CONFIG), nLayer: 1e9 };
    expect(() => expectedTensors(c, 'backbone.embeddings.weight')).toThrow('the model config: "nLayer" is 1000000000: layers must be an integer from 1 to 4096');
  });
});
