/**
 * Fuzz: GGUF files of tiny Mamba / Mamba-2 models (llama.cpp's layout, test/support/gguf-writer.ts).
 * Valid ones inspect to their dimensions; hostile metadata (every value type, sizes up to 2^64 − 1,
 * NaN, strings, arrays, missing and repeated keys), hostile tensor infos (shapes, types, offsets,
 * names) and byte corruption end in a valid inspection or a clean ModelFileError naming the file,
 * within the time and heap budget of one case (test/support/fuzz-model.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../app/random';
import { GGML_TYPE_IDS, GT, tensorBytes, tinyModel, writeGguf, type TinyModelOptions, type WriterKv, type WriterTensor, type WriterValue } from '../support/gguf-writer';
import { checkProperty, fuzzStats, hostileNumber, inspectCase, PROPERTY_TIMEOUT_MS } from '../support/fuzz-model';

const stats = fuzzStats('GGUF');

/** Options of a valid tiny model: Mamba-2's heads (rank) divide d_inner = 2·d_model, its groups divide the heads. */
const validOptions: fc.Arbitrary<TinyModelOptions & { seed: number }> = fc
  .record({
    arch: fc.constantFrom('mamba' as const, 'mamba2' as const),
    dModel: fc.integer({ min: 1, max: 8 }),
    nLayer: fc.integer({ min: 1, max: 3 }),
    vocab: fc.integer({ min: 1, max: 24 }),
    dState: fc.integer({ min: 1, max: 6 }),
    dConv: fc.integer({ min: 2, max: 6 }),
    untied: fc.boolean(),
    matrixType: fc.constantFrom('F32' as const, 'F16' as const, 'BF16' as const),
    flatAD: fc.boolean(),
    seed: fc.integer(),
  })
  .chain((o) => {
    const di = 2 * o.dModel;
    const divisors = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);
    if (o.arch === 'mamba') return fc.integer({ min: 1, max: 6 }).map((rank) => ({ ...o, rank }));
    return fc.constantFrom(...divisors(di)).chain((rank) => fc.constantFrom(...divisors(rank)).map((nGroups) => ({ ...o, rank, nGroups })));
  });

const model = (o: TinyModelOptions & { seed: number }) => tinyModel(o, seededRandom(o.seed));

/** A metadata value of any GGUF type, hostile where it can be. */
const hostileKv: fc.Arbitrary<Omit<WriterKv, 'key'>> = fc.oneof(
  fc.record({ type: fc.constant(GT.U32), value: fc.oneof(fc.constantFrom(0, 1, 4096, 4097, 65_536, 1e9, 2 ** 32 - 1), fc.nat({ max: 2 ** 32 - 1 })) }),
  fc.record({ type: fc.constant(GT.I32), value: fc.integer() }),
  fc.record({ type: fc.constantFrom(GT.U8, GT.I8, GT.U16, GT.I16), value: fc.integer({ min: 0, max: 127 }) }),
  fc.record({ type: fc.constant(GT.U64), value: fc.oneof(fc.constantFrom(0n, 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })) }),
  fc.record({ type: fc.constant(GT.I64), value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) }),
  fc.record({ type: fc.constantFrom(GT.F32, GT.F64), value: hostileNumber }),
  fc.record({ type: fc.constant(GT.BOOL), value: fc.boolean() }),
  fc.record({ type: fc.constant(GT.STRING), value: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('mamba', 'mamba2', 'llama', 'gpt2', ''), fc.integer({ min: 1000, max: 100_000 }).map((n) => 'x'.repeat(n))) }),
  fc.record({ type: fc.constant(GT.ARRAY), itemType: fc.constant(GT.U32), value: fc.array(fc.nat({ max: 2 ** 32 - 1 }), { maxLength: 6 }) as fc.Arbitrary<WriterValue> }),
  fc.record({ type: fc.constant(GT.ARRAY), itemType: fc.constant(GT.STRING), value: fc.array(fc.string({ maxLength: 4 }), { maxLength: 40 }) as fc.Arbitrary<WriterValue> }),
);

const ARCH_KEYS = ['embedding_length', 'block_count', 'ssm.conv_kernel', 'ssm.inner_size', 'ssm.state_size', 'ssm.time_step_rank', 'ssm.group_count', 'attention.layer_norm_rms_epsilon', 'ssm.dt_b_c_rms', 'context_length'];
const OTHER_KEYS = ['general.architecture', 'general.alignment', 'tokenizer.ggml.tokens', 'tokenizer.ggml.model', 'tokenizer.ggml.token_type', 'general.name'];

type KvChange = { op: 'set'; key: string; kv: Omit<WriterKv, 'key'> } | { op: 'delete'; key: string } | { op: 'repeat'; key: string };
const kvChange: fc.Arbitrary<KvChange> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), key: fc.constantFrom(...ARCH_KEYS, ...OTHER_KEYS), kv: hostileKv }) },
  fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom(...ARCH_KEYS, ...OTHER_KEYS) }),
  fc.record({ op: fc.constant('repeat' as const), key: fc.constantFrom(...ARCH_KEYS, ...OTHER_KEYS) }),
);

function applyKv(kv: WriterKv[], arch: string, change: KvChange): WriterKv[] {
  const key = ARCH_KEYS.includes(change.key) ? `${arch}.${change.key}` : change.key;
  const at = kv.findIndex((e) => e.key === key);
  if (change.op === 'delete') return kv.filter((e) => e.key !== key);
  if (change.op === 'repeat') return at >= 0 ? [...kv, kv[at] as WriterKv] : kv;
  const entry = { key, ...change.kv };
  return at >= 0 ? kv.map((e, i) => (i === at ? entry : e)) : [...kv, entry];
}

type TensorChange =
  | { op: 'shape'; index: number; shape: number[]; resize: boolean }
  | { op: 'type'; index: number; type: keyof typeof GGML_TYPE_IDS; resize: boolean }
  | { op: 'offset'; index: number; offset: number }
  | { op: 'rename'; index: number; name: string }
  | { op: 'drop'; index: number };
const dim = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constantFrom(2 ** 32, 2 ** 40, 2 ** 53 - 1));
const tensorChange: fc.Arbitrary<TensorChange> = fc.oneof(
  fc.record({ op: fc.constant('shape' as const), index: fc.nat(), shape: fc.array(dim, { maxLength: 5 }), resize: fc.boolean() }),
  fc.record({ op: fc.constant('type' as const), index: fc.nat(), type: fc.constantFrom(...(Object.keys(GGML_TYPE_IDS) as (keyof typeof GGML_TYPE_IDS)[])), resize: fc.boolean() }),
  fc.record({ op: fc.constant('offset' as const), index: fc.nat(), offset: fc.oneof(fc.nat({ max: 4096 }), fc.constantFrom(2 ** 40, 2 ** 53 - 1)) }),
  fc.record({
    op: fc.constant('rename' as const),
    index: fc.nat(),
    name: fc.oneof(fc.constantFrom('blk.999999.ssm_in.weight', 'blk.4294967295.attn_norm.weight', 'blk.0.ssm_in.weight', 'output.weight', 'token_embd.weight', 'blk.01.ssm_a', ''), fc.string({ maxLength: 12 })),
  }),
  fc.record({ op: fc.constant('drop' as const), index: fc.nat() }),
);

/** Data of the right size for a tensor's (new) shape and type, when small enough to make. */
function resized(t: WriterTensor): WriterTensor {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const bytes = tensorBytes(t.type, t.shape);
  return Number.isInteger(bytes) && n <= 4096 ? { ...t, data: new Uint8Array(bytes) } : t;
}

function applyTensor(tensors: WriterTensor[], c: TensorChange): WriterTensor[] {
  if (tensors.length === 0) return tensors;
  const i = c.index % tensors.length;
  const t = tensors[i] as WriterTensor;
  const replace = (next: WriterTensor | null) => tensors.flatMap((x, j) => (j !== i ? [x] : next ? [next] : []));
  switch (c.op) {
    case 'shape':
      return replace(c.resize ? resized({ ...t, shape: c.shape }) : { ...t, shape: c.shape });
    case 'type':
      return replace(c.resize ? resized({ ...t, type: c.type }) : { ...t, type: c.type });
    case 'offset':
      return replace({ ...t, offset: c.offset });
    case 'rename':
      return replace({ ...t, name: c.name });
    case 'drop':
      return replace(null);
  }
}

describe('fuzz: GGUF', () => {
  it('valid tiny models inspect to their dimensions', async () => {
    await checkProperty(
      stats,
      fc.asyncProperty(validOptions, async (o) => {
        const inspection = await inspectCase(stats, { 'model.gguf': model(o).bytes });
        expect(inspection?.config).toMatchObject({ architecture: o.arch, dModel: o.dModel, nLayer: o.nLayer, vocabSize: o.vocab, dState: o.dState, dConv: o.dConv });
      }),
    );
  }, PROPERTY_TIMEOUT_MS);

  it('hostile metadata: a valid inspection or a clean ModelFileError naming the file', async () => {
    await checkProperty(
      stats,
      fc.asyncProperty(validOptions, fc.array(kvChange, { minLength: 1, maxLength: 3 }), async (o, changes) => {
        const { spec } = model(o);
        const kv = changes.reduce((k, c) => applyKv(k, o.arch, c), spec.kv);
        await inspectCase(stats, { 'model.gguf': writeGguf({ ...spec, kv }) });
      }),
    );
  }, PROPERTY_TIMEOUT_MS);

  it('hostile tensor infos and corrupted bytes: a valid inspection or a clean ModelFileError naming the file', async () => {
    await checkProperty(
      stats,
      fc.asyncProperty(
        validOptions,
        fc.array(tensorChange, { maxLength: 3 }),
        fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 4 }),
        fc.option(fc.nat(), { freq: 4 }),
        async (o, changes, flips, cut) => {
          const { spec } = model(o);
          const bytes = writeGguf({ ...spec, tensors: changes.reduce(applyTensor, spec.tensors) });
          // Flips land in the header (metadata and tensor infos), where they matter most.
          const headerEnd = Math.min(bytes.byteLength, 2048);
          for (const f of flips) bytes[f.at % headerEnd] = f.value;
          await inspectCase(stats, { 'model.gguf': cut === null ? bytes : bytes.subarray(0, cut % (bytes.byteLength + 1)) });
        },
      ),
    );
  }, PROPERTY_TIMEOUT_MS);
});
