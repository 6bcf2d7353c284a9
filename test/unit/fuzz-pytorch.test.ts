/**
 * Fuzz: PyTorch .bin checkpoints (app/formats/{zip,pickle,pytorch}.ts) beside a valid config.json.
 * Byte corruption of a valid checkpoint (flips, cuts, splices — aimed at the zip records and the
 * pickle as often as at the data), mutated pickles rewrapped in a sound zip (opcodes inserted,
 * deleted, duplicated, hostile ones among them), and pickles generated opcode by opcode: each ends
 * in a valid inspection or a clean ModelFileError naming the file, within the time and heap budget
 * of one case (test/support/fuzz-model.ts) — never another exception, never a hang. A checkpoint
 * that reads must describe tensors that lie inside the file, each exactly as long as its shape and
 * dtype say.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalConfig } from '../../app/arch/registry';
import { expectedTensors } from '../../app/arch/tensors';
import { readPytorchCheckpoint } from '../../app/formats/pytorch';
import { DTYPE_BYTES } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import { checkProperty, expectCleanOutcome, fuzzStats, inspectCase, PROPERTY_TIMEOUT_MS } from '../support/fuzz-model';
import { f32Bytes, stateDictPickle, torchZipEntries, writeZip, zipLayout, type TensorSpec } from '../support/pytorch-writer';
import { TINY_CONFIG } from '../support/tiny-model';
import { measure } from '../support/within-budget';

const stats = fuzzStats('pytorch');
const FILE = 'm/pytorch_model.bin';

/** A valid checkpoint of TINY_CONFIG: one storage per tensor, the head tied to the embedding's storage. */
function validCheckpoint() {
  const specs = expectedTensors(canonicalConfig('c', TINY_CONFIG), 'backbone.embeddings.weight');
  const storages: Record<string, Uint8Array> = {};
  const tensors: TensorSpec[] = [];
  specs.forEach((s, i) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (s.optional) {
      tensors.push({ name: s.name, key: '0', numel: n, shape: s.shape });
      return;
    }
    storages[String(i)] = f32Bytes(Array.from({ length: n }, (_, j) => Math.sin(i + j)));
    tensors.push({ name: s.name, key: String(i), numel: n, shape: s.shape });
  });
  const pkl = stateDictPickle(tensors, { metadata: true });
  return { pkl, storages, bytes: writeZip(torchZipEntries(pkl, storages)) };
}
const valid = validCheckpoint();

/** A checkpoint that reads must describe ranges inside the file, each as long as its shape and dtype say. */
async function checkCheckpoint(bytes: Uint8Array) {
  const outcome = await measure(() => readPytorchCheckpoint(memorySource(FILE, bytes)));
  expectCleanOutcome(stats, outcome, [FILE]);
  for (const t of outcome.value?.tensors.values() ?? []) {
    expect(t.offset + t.byteLength).toBeLessThanOrEqual(bytes.byteLength);
    expect(t.byteLength).toBe(t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype]);
  }
}
const inspectBin = (bytes: Uint8Array) => inspectCase(stats, { 'config.json': JSON.stringify(TINY_CONFIG), 'pytorch_model.bin': bytes });

/** Where the structure is: zip headers and the central directory, and the pickle. */
const layout = zipLayout(torchZipEntries(valid.pkl, valid.storages));
const structural = layout.segments.filter((s) => s.bytes !== valid.pkl && !Object.values(valid.storages).includes(s.bytes)).map((s) => ({ from: s.offset, to: s.offset + s.bytes.length }));
const pklSegment = layout.segments.find((s) => s.bytes === valid.pkl)!;
const position = fc.oneof(
  fc.nat({ max: valid.bytes.length - 1 }),
  fc.constantFrom(...structural).chain((r) => fc.integer({ min: r.from, max: r.to - 1 })),
  fc.integer({ min: pklSegment.offset, max: pklSegment.offset + pklSegment.bytes.length - 1 }),
);

/** Opcodes a mutation may insert: the ones the reader knows, hostile ones, and arbitrary bytes. */
const OPCODE_TOKENS: number[][] = [
  [0x28], [0x29], [0x74], [0x85], [0x86], [0x87], [0x5d], [0x61], [0x65], [0x7d], [0x73], [0x75], [0x4e], [0x88], [0x89],
  [0x4b, 7], [0x4d, 1, 2], [0x4a, 0xff, 0xff, 0xff, 0x7f], [0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x80], [0x47, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
  [0x58, 1, 0, 0, 0, 0x41], [0x8c, 1, 0x42], [0x71, 3], [0x72, 0xff, 0xff, 0xff, 0xff], [0x94], [0x68, 0], [0x6a, 0xff, 0xff, 0xff, 0xff],
  [0x52], [0x62], [0x51], [0x93], [0x2e], [0x95, 1, 0, 0, 0, 0, 0, 0, 0],
  [...new TextEncoder().encode('cos\nsystem\n')],
  [...new TextEncoder().encode('cbuiltins\neval\n')],
  [...new TextEncoder().encode('ccollections\nOrderedDict\n')],
  [...new TextEncoder().encode('ctorch._utils\n_rebuild_tensor_v2\n')],
  [...new TextEncoder().encode('ctorch\nFloatStorage\n')],
  [0x69], [0x6f], [0x81], [0x92], [0x82, 1], [0x50], [0x30], [0x31], [0x32],
];
const token = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...OPCODE_TOKENS) }, fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 6 }));

type PickleEdit = { kind: 'insert'; at: number; bytes: number[] } | { kind: 'delete'; at: number; length: number } | { kind: 'duplicate'; at: number; length: number } | { kind: 'set'; at: number; value: number };
const pickleEdit: fc.Arbitrary<PickleEdit> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: token }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
);

function applyEdits(pkl: Uint8Array, edits: PickleEdit[]): Uint8Array {
  let b = [...pkl];
  for (const e of edits) {
    const at = e.at % (b.length + 1);
    if (e.kind === 'insert') b = [...b.slice(0, at), ...e.bytes, ...b.slice(at)];
    else if (e.kind === 'delete') b.splice(at, e.length);
    else if (e.kind === 'duplicate') b = [...b.slice(0, at + e.length), ...b.slice(at, at + e.length), ...b.slice(at + e.length)];
    else if (at < b.length) b[at] = e.value;
  }
  return Uint8Array.from(b);
}

/** A file torch 2.11 wrote (test/fixtures/pytorch-bin/): its zip has data descriptors, version records, 64-byte alignment. */
const realDir = path.resolve(import.meta.dirname, '../fixtures/pytorch-bin/mamba-ssm-tied-f32/bin');
const real = new Uint8Array(readFileSync(path.join(realDir, 'pytorch_model.bin')));
const realConfig = readFileSync(path.join(realDir, 'config.json'), 'utf8');

describe('fuzz: PyTorch .bin checkpoints', () => {
  it('the unmutated checkpoint reads and inspects', async () => {
    const inspection = await inspectBin(valid.bytes);
    expect(inspection?.format).toBe('pytorch');
    expect(inspection?.tiedHead).toBe(true);
  });

  it('corrupted bytes (flips, cuts, splices; zip records and the pickle first): a sound checkpoint or a clean ModelFileError', async () => {
    await checkProperty(
      stats,
      fc.asyncProperty(
        fc.array(fc.record({ at: position, value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 6 }),
        fc.option(fc.nat({ max: valid.bytes.length }), { freq: 4 }),
        fc.option(fc.record({ from: position, to: position, length: fc.integer({ min: 1, max: 64 }) }), { freq: 4 }),
        async (flips, cut, splice) => {
          let bytes = valid.bytes.slice();
          for (const f of flips) bytes[f.at] = f.value;
          if (splice) bytes.copyWithin(splice.to, splice.from, splice.from + splice.length);
          if (cut !== null) bytes = bytes.slice(0, cut);
          await checkCheckpoint(bytes);
          await inspectBin(bytes);
        },
      ),
    );
  }, PROPERTY_TIMEOUT_MS);

  it('mutated pickles in a sound zip (opcodes inserted, deleted, duplicated; hostile ones among them): a sound checkpoint or a clean ModelFileError', async () => {
    await checkProperty(
      stats,
      fc.asyncProperty(fc.array(pickleEdit, { minLength: 1, maxLength: 5 }), async (edits) => {
        const bytes = writeZip(torchZipEntries(applyEdits(valid.pkl, edits), valid.storages));
        await checkCheckpoint(bytes);
        await inspectBin(bytes);
      }),
    );
  }, PROPERTY_TIMEOUT_MS);

  it('corrupted bytes of a checkpoint torch.save wrote (flips and cuts anywhere, mostly in its first and last 4 KiB): a sound checkpoint or a clean ModelFileError', async () => {
    const at = fc.oneof(fc.nat({ max: real.length - 1 }), fc.nat({ max: 4095 }), fc.integer({ min: real.length - 4096, max: real.length - 1 }));
    await checkProperty(
      stats,
      fc.asyncProperty(fc.array(fc.record({ at, value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 6 }), fc.option(fc.nat({ max: real.length }), { freq: 4 }), async (flips, cut) => {
        let bytes = real.slice();
        for (const f of flips) bytes[f.at] = f.value;
        if (cut !== null) bytes = bytes.slice(0, cut);
        await checkCheckpoint(bytes);
        await inspectCase(stats, { 'config.json': realConfig, 'pytorch_model.bin': bytes });
      }),
    );
  }, PROPERTY_TIMEOUT_MS);

  it('pickles generated opcode by opcode: a value or a clean ModelFileError, never anything else', async () => {
    await checkProperty(
      stats,
      fc.asyncProperty(fc.array(token, { maxLength: 60 }), fc.boolean(), async (tokens, proto) => {
        const pkl = Uint8Array.from([...(proto ? [0x80, 2] : []), ...tokens.flat(), 0x2e]);
        await checkCheckpoint(writeZip(torchZipEntries(pkl, valid.storages)));
      }),
    );
  }, PROPERTY_TIMEOUT_MS);
});
