/**
 * Fuzz: config.json (transformers and mamba_ssm, Mamba and Mamba-2) beside matching weights.
 * Valid configs inspect to the config they describe; hostile values in any key (huge, negative,
 * non-integer, NaN, ±Infinity, strings, nesting 200,000 deep, 200,000-character strings, …) and
 * random edits of the text end in a valid inspection or a clean ModelFileError naming the file,
 * within the time and heap budget of one case (test/support/fuzz-model.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalConfig } from '../../app/arch/registry';
import { tinyModelBytes } from '../support/memory-model';
import { checkProperty, fuzzStats, hostileJson, inspectCase, pythonJson, PROPERTY_TIMEOUT_MS, validConfig } from '../support/fuzz-model';

const stats = fuzzStats('config.json');

/** Keys a Mamba config may hold (each convention's), and some it should not. */
const KEYS = [
  'model_type', 'architectures', 'hidden_size', 'num_hidden_layers', 'vocab_size', 'state_size', 'expand', 'intermediate_size', 'conv_kernel',
  'time_step_rank', 'use_bias', 'use_conv_bias', 'tie_word_embeddings', 'layer_norm_epsilon', 'num_heads', 'head_dim', 'n_groups',
  'chunk_size', 'time_step_limit', 'd_model', 'n_layer', 'pad_vocab_size_multiple', 'tie_embeddings', 'norm_epsilon', 'ssm_cfg',
  'ssm_cfg.layer', 'ssm_cfg.d_state', 'ssm_cfg.d_conv', 'ssm_cfg.expand', 'ssm_cfg.dt_rank', 'ssm_cfg.headdim', 'ssm_cfg.ngroups',
  'ssm_cfg.chunk_size', 'ssm_cfg.dt_limit', 'ssm_cfg.bias', 'ssm_cfg.conv_bias', '__float__', 'x',
];

/** A copy of `raw` with `path` ("a" or "a.b") set to `value` (or deleted when `value` is undefined). */
function setPath(raw: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const out = { ...raw };
  const [head, tail] = path.split('.') as [string, string | undefined];
  if (tail === undefined) {
    if (value === undefined) delete out[head];
    else out[head] = value;
    return out;
  }
  const inner = out[head];
  out[head] = setPath(inner && typeof inner === 'object' && !Array.isArray(inner) ? (inner as Record<string, unknown>) : {}, tail, value);
  return out;
}

/** Text edits: a token inserted, a range deleted, the text cut. */
type Edit = { kind: 'insert'; at: number; text: string } | { kind: 'delete'; at: number; length: number } | { kind: 'cut'; at: number };
const TOKENS = ['{', '}', '[', ']', ',', ':', '"', '\\', 'NaN', 'Infinity', '-Infinity', '-', '1e309', '\ufeff', 'null', '0', '"x":1', '"hidden_size":1e308,', `${'['.repeat(5000)}`, '\u0000', '\ud800'];
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 6 })) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
);
function applyEdit(text: string, e: Edit): string {
  const at = e.at % (text.length + 1);
  if (e.kind === 'insert') return text.slice(0, at) + e.text + text.slice(at);
  if (e.kind === 'delete') return text.slice(0, at) + text.slice(at + e.length);
  return text.slice(0, at);
}

describe('fuzz: config.json', () => {
  it('valid configs in every convention inspect to the config they describe', async () => {
    await checkProperty(
      stats,
      fc.asyncProperty(validConfig, async (raw) => {
        const inspection = await inspectCase(stats, tinyModelBytes(pythonJson(raw), raw));
        expect(inspection?.config).toEqual(canonicalConfig('config.json', raw));
      }),
    );
  }, PROPERTY_TIMEOUT_MS);

  it('hostile values in any key: a valid inspection or a clean ModelFileError naming the file', async () => {
    await checkProperty(
      stats,
      fc.asyncProperty(
        validConfig,
        fc.array(fc.record({ key: fc.constantFrom(...KEYS), value: fc.option(hostileJson, { nil: undefined, freq: 8 }) }), { minLength: 1, maxLength: 3 }),
        async (raw, changes) => {
          const hostile = changes.reduce((c, { key, value }) => setPath(c, key, value), raw);
          await inspectCase(stats, tinyModelBytes(pythonJson(hostile), raw));
        },
      ),
    );
  }, PROPERTY_TIMEOUT_MS);

  it('random edits of the text: a valid inspection or a clean ModelFileError naming the file', async () => {
    await checkProperty(
      stats,
      fc.asyncProperty(validConfig, fc.array(edit, { minLength: 1, maxLength: 4 }), async (raw, edits) => {
        await inspectCase(stats, tinyModelBytes(edits.reduce(applyEdit, pythonJson(raw)), raw));
      }),
    );
  }, PROPERTY_TIMEOUT_MS);
});
