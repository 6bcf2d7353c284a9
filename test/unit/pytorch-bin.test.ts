/**
 * PyTorch .bin checkpoints read safely (app/formats/{zip,pickle,pytorch}.ts), on hand-written
 * files (test/support/pytorch-writer.ts; the files torch itself writes are checked in
 * pytorch-fixtures.test.ts): a state dict's tensors become byte ranges (tied storages, views at
 * offsets, BF16, ZIP64 past 4 GiB), and every hostile or broken file is a ModelFileError naming
 * it — with nothing run: the pickles that would run a command under Python's pickle leave no trace.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { ModelFileError } from '../../app/formats/errors';
import { readPickle, type PickleHooks } from '../../app/formats/pickle';
import { readPytorchCheckpoint } from '../../app/formats/pytorch';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { memorySource } from '../../app/formats/source';
import { readZipDirectory } from '../../app/formats/zip';
import { canonicalConfig } from '../../app/arch/registry';
import { expectedTensors } from '../../app/arch/tensors';
import { isModelFileName, modelOwnFiles } from '../../app/library/model-files';
import { memoryModelFiles } from '../support/memory-model';
import { f32Bytes, PickleWriter, sparseSource, stateDictPickle, torchZipEntries, writeZip, zipLayout, type TensorSpec } from '../support/pytorch-writer';
import { measure } from '../support/within-budget';

const FILE = 'm/pytorch_model.bin';
const scratch = mkdtempSync(path.join(tmpdir(), 'pytorch-bin-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const read = (bytes: Uint8Array) => readPytorchCheckpoint(memorySource(FILE, bytes));
const refused = async (bytes: Uint8Array, problem: RegExp) => {
  const error = await read(bytes).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelFileError);
  expect((error as ModelFileError).file).toBe(FILE);
  expect((error as ModelFileError).message.startsWith(`${FILE}: `)).toBe(true);
  expect((error as ModelFileError).problem).toMatch(problem);
};
/** A checkpoint whose data.pkl is `pkl` (and one storage "0" of 4 floats). */
const withPickle = (pkl: Uint8Array) => writeZip(torchZipEntries(pkl, { 0: f32Bytes([1, 2, 3, 4]) }));

describe('a state dict written the way torch.save writes it', () => {
  const emb = Float32Array.from({ length: 12 }, (_, i) => i / 4 - 1);
  const joint = Float32Array.from({ length: 9 }, (_, i) => 10 + i);
  const tensors: TensorSpec[] = [
    { name: 'backbone.embedding.weight', key: '0', numel: 12, shape: [4, 3] },
    { name: 'lm_head.weight', key: '0', numel: 12, shape: [4, 3] },
    { name: 'a', key: '1', numel: 9, shape: [3], offset: 2 },
    { name: 'b', key: '1', numel: 9, shape: [2, 2], offset: 5 },
    { name: 'scalar', key: '1', numel: 9, shape: [], offset: 8 },
    { name: 'h', key: '2', numel: 3, shape: [3], storageType: 'BFloat16Storage' },
  ];
  const bf16 = Uint8Array.from([0x80, 0x3f, 0x00, 0x40, 0x40, 0xc0]); // 1, 2, -3
  const bytes = writeZip(torchZipEntries(stateDictPickle(tensors, { metadata: true }), { 0: f32Bytes(emb), 1: f32Bytes(joint), 2: bf16 }, { archive: 'pytorch_model' }));

  it('gives every tensor a byte range of its storage: shared storages, offsets, scalars, BF16', async () => {
    const ckpt = await read(bytes);
    expect(ckpt.archive).toBe('pytorch_model');
    expect([...ckpt.tensors.keys()]).toEqual(tensors.map((t) => t.name));
    const source = memorySource(FILE, bytes);
    const values = async (name: string) => {
      const t = ckpt.tensors.get(name)!;
      const raw = (await source.read(t.offset, t.byteLength)).slice();
      return t.dtype === 'F32' ? [...new Float32Array(raw.buffer)] : [...raw];
    };
    expect(await values('backbone.embedding.weight')).toEqual([...emb]);
    const e = ckpt.tensors.get('backbone.embedding.weight')!;
    expect(ckpt.tensors.get('lm_head.weight')).toMatchObject({ offset: e.offset, byteLength: 48, storageKey: '0' });
    expect(e.offset % 64).toBe(0); // torch aligns storages to 64 bytes; the local header's extra field says so
    expect(await values('a')).toEqual([12, 13, 14]);
    expect(await values('b')).toEqual([15, 16, 17, 18]);
    expect(ckpt.tensors.get('b')!.shape).toEqual([2, 2]);
    expect(await values('scalar')).toEqual([18]);
    expect(ckpt.tensors.get('scalar')).toMatchObject({ shape: [], byteLength: 4 });
    expect(ckpt.tensors.get('h')).toMatchObject({ dtype: 'BF16', byteLength: 6 });
    expect(await values('h')).toEqual([...bf16]);
  });

  it('a plain dict (transformers’ shards) and protocol-2 memo references read the same', async () => {
    const plain = writeZip(torchZipEntries(stateDictPickle(tensors.slice(0, 2), { plainDict: true }), { 0: f32Bytes(emb) }));
    const ckpt = await read(plain);
    expect([...ckpt.tensors.keys()]).toEqual(['backbone.embedding.weight', 'lm_head.weight']);
  });

  it('nn.Parameter (_rebuild_parameter) and a 7th, empty metadata argument read as the tensor; non-empty metadata is refused', async () => {
    /** `{"w": T}` where T is `_rebuild_tensor_v2(storage 0, 0, (4,), (1,), False, OrderedDict()[, extra])`, optionally wrapped. */
    const pkl = (wrap: boolean, extra?: (w: PickleWriter) => void) => {
      const w = new PickleWriter().proto(2).emptyDict().str('w');
      if (wrap) w.global('torch._utils', '_rebuild_parameter').mark();
      w.global('torch._utils', '_rebuild_tensor_v2').mark().mark().str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(4).tuple().persid();
      w.int(0).int(4).tuple(1).int(1).tuple(1).bool(false).global('collections', 'OrderedDict').tuple(0).reduce();
      extra?.(w);
      w.tuple().reduce();
      if (wrap) w.bool(true).global('collections', 'OrderedDict').tuple(0).reduce().tuple().reduce();
      return w.setitem().stop().done();
    };
    for (const [wrap, extra] of [[true, undefined], [false, (w: PickleWriter) => w.emptyDict()]] as const) {
      const ckpt = await read(withPickle(pkl(wrap, extra)));
      expect(ckpt.tensors.get('w')).toMatchObject({ dtype: 'F32', shape: [4], byteLength: 16 });
    }
    await refused(withPickle(pkl(false, (w) => w.emptyDict().str('k').int(1).setitem())), /tensor metadata a dict of 1 entries is not empty/);
  });

  it('reads ZIP64 archives whose entries lie past 4 GiB, reading only headers and the pickle', async () => {
    const gap = 2 ** 32 + 12345;
    const entries = torchZipEntries(stateDictPickle(tensors.slice(0, 2)), { 0: f32Bytes(emb) });
    entries[2]!.gapBefore = gap; // data/0 starts past 4 GiB
    const layout = zipLayout(entries);
    const source = sparseSource(FILE, layout);
    const ckpt = await readPytorchCheckpoint(source);
    const t = ckpt.tensors.get('backbone.embedding.weight')!;
    expect(t.offset).toBeGreaterThan(2 ** 32);
    expect([...new Float32Array((await source.read(t.offset, t.byteLength)).slice().buffer)]).toEqual([...emb]);
    expect(source.reads.reduce((s, r) => s + r.length, 0)).toBeLessThan(200_000);
  });

  it('a model folder with pytorch_model.bin is inspected as format "pytorch"; a shared head is the tied embedding', async () => {
    const config = { d_model: 8, n_layer: 2, vocab_size: 16, ssm_cfg: {}, pad_vocab_size_multiple: 8 };
    const specs = expectedTensors(canonicalConfig('c', config), 'backbone.embedding.weight');
    const storages: Record<string, Uint8Array> = {};
    const ts: TensorSpec[] = [];
    const expected = new Map<string, number[]>();
    specs.forEach((s, i) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (s.name === 'lm_head.weight') {
        ts.push({ name: s.name, key: '0', numel: expected.get('backbone.embedding.weight')!.length, shape: s.shape });
        return;
      }
      const values = Array.from({ length: n }, (_, j) => Math.sin(i * 100 + j));
      expected.set(s.name, values);
      storages[String(i)] = f32Bytes(values);
      ts.push({ name: s.name, key: String(i), numel: n, shape: s.shape });
    });
    const bin = writeZip(torchZipEntries(stateDictPickle(ts, { metadata: true }), storages));
    const files = memoryModelFiles('m', { 'config.json': JSON.stringify(config), 'pytorch_model.bin': bin });
    const inspection = await inspectModel(files);
    expect(inspection.format).toBe('pytorch');
    expect(inspection.tiedHead).toBe(true);
    expect(inspection.tensors.has('lm_head.weight')).toBe(false);
    expect(inspection.weightFiles).toEqual(['pytorch_model.bin']);
    expect(inspection.tensors.get('backbone.norm_f.weight')).toMatchObject({ encoding: 'pytorch', dtype: 'F32', file: 'pytorch_model.bin' });
    const table = await readAllTensorsF32(files, inspection);
    for (const [name, values] of expected) expect([...table.get(name)!], name).toEqual([...Float32Array.from(values)]);
  });
});

describe('the library records a PyTorch model’s own files', () => {
  it('shards, their index and config.json; not the other .bin files beside them', () => {
    const shards = ['pytorch_model-00001-of-00002.bin', 'pytorch_model-00002-of-00002.bin'];
    const present = [...shards, 'pytorch_model.bin.index.json', 'config.json', 'training_args.bin', 'tokenizer.json', 'notes.txt'];
    expect(modelOwnFiles({ format: 'pytorch', weightFiles: shards }, present)).toEqual(['config.json', ...shards, 'pytorch_model.bin.index.json', 'tokenizer.json']);
    expect(isModelFileName('pytorch_model.bin')).toBe(true);
    expect(isModelFileName('pytorch_model.bin.index.json')).toBe(true);
  });
});

describe('hostile pickles are refused and nothing in them runs', () => {
  const sentinel = path.join(scratch, 'pwned');
  const command = `touch ${sentinel}`;
  /** `module.name(command)` as a pickle: GLOBAL, the argument tuple, REDUCE — what a malicious .bin holds. */
  const call = (module: string, name: string, arg: string) => new PickleWriter().proto(2).global(module, name).str(arg).tuple(1).reduce().stop().done();
  const hostile: [string, Uint8Array][] = [
    ['os.system', call('os', 'system', command)],
    ['posix.system', call('posix', 'system', command)],
    ['builtins.eval', call('builtins', 'eval', `__import__('os').system(${JSON.stringify(command)})`)],
    ['builtins.exec', call('builtins', 'exec', `import os; os.system(${JSON.stringify(command)})`)],
    ['subprocess.call', call('subprocess', 'call', command)],
    ['torch.load', call('torch', 'load', sentinel)],
    ['a torch global outside the allow-list', call('torch._utils', '_rebuild_tensor', command)],
    ['STACK_GLOBAL os.system', new PickleWriter().proto(4).str('os').str('system').op(0x93).str(command).tuple(1).reduce().stop().done()],
    // INST: "ios\nsystem\n" with the argument after a MARK
    ['INST', new PickleWriter().proto(2).mark().str(command).op(0x69).op(...new TextEncoder().encode('os\nsystem\n')).stop().done()],
    // OBJ: MARK, the class, its argument
    ['OBJ of os.system', new PickleWriter().proto(2).mark().global('os', 'system').str(command).op(0x6f).stop().done()],
    // an OrderedDict whose state dict of tensors hides a call: the global is refused where it is named
    ['a call inside a state dict', new PickleWriter().proto(2).global('collections', 'OrderedDict').tuple(0).reduce().str('x').global('os', 'system').str(command).tuple(1).reduce().setitem().stop().done()],
  ];

  it('the payloads are live: Python’s own pickle runs them (so the refusals below are not vacuous)', (test) => {
    const python = spawnSync('python3', ['-c', 'import sys; sys.exit(0)']);
    if (python.status !== 0) return test.skip('no python3 to show that the payload runs under Python');
    const probe = path.join(scratch, 'probe');
    const payload = call('os', 'system', `touch ${probe}`);
    const run = spawnSync('python3', ['-c', 'import pickle,sys; pickle.loads(sys.stdin.buffer.read())'], { input: payload });
    expect(run.status).toBe(0);
    expect(existsSync(probe)).toBe(true);
  });

  it.for(hostile)('%s: refused naming the file, the sentinel file never created', async ([, pkl]) => {
    await refused(withPickle(pkl), /data\.pkl byte \d+: (refers to .* which a PyTorch state dict never needs.*nothing in it was run|opcode 0x[0-9a-f]{2} \((INST|OBJ)\) is not allowed)/);
    expect(existsSync(sentinel)).toBe(false);
  });

  it('BUILD on anything but an OrderedDict, REDUCE of a storage class, NEWOBJ, EXT, PERSID are refused', async () => {
    const cases: [Uint8Array, RegExp][] = [
      [new PickleWriter().proto(2).emptyDict().emptyDict().build().stop().done(), /BUILD on something that is not an OrderedDict/],
      [new PickleWriter().proto(2).global('torch', 'FloatStorage').tuple(0).reduce().stop().done(), /storage class torch\.FloatStorage called directly/],
      [new PickleWriter().proto(2).global('collections', 'OrderedDict').tuple(0).op(0x81).stop().done(), /NEWOBJ\) is not allowed/],
      [new PickleWriter().proto(2).op(0x82, 1).stop().done(), /EXT1\) is not allowed/],
      [new PickleWriter().proto(2).mark().global('collections', 'OrderedDict').op(0x6f).stop().done(), /OBJ\) is not allowed/],
      [new PickleWriter().proto(2).op(0x50).op(...new TextEncoder().encode('x\n')).stop().done(), /PERSID\) is not allowed/],
      [new PickleWriter().proto(2).global('collections', 'OrderedDict').str('x').tuple(1).reduce().stop().done(), /OrderedDict\(…\) with arguments/],
    ];
    for (const [pkl, problem] of cases) await refused(withPickle(pkl), problem);
  });

  it('bombs: deep nesting, many marks, a huge memo index, huge strings and integers — refused at once, within a small budget', async () => {
    const deep = new PickleWriter().proto(2);
    for (let i = 0; i < 100_000; i++) deep.op(0x5d); // EMPTY_LIST × 100k, then APPEND each into the one before
    for (let i = 0; i < 99_999; i++) deep.op(0x61);
    const marks = new PickleWriter().proto(2);
    for (let i = 0; i < 100_000; i++) marks.mark();
    const tuples = new PickleWriter().proto(2).tuple(0);
    for (let i = 0; i < 100_000; i++) tuples.tuple(1);
    const cases: [Uint8Array, RegExp][] = [
      [deep.stop().done(), /nested deeper than 32 levels/],
      [tuples.stop().done(), /nested deeper than 32 levels/],
      [marks.stop().done(), /marks nested deeper than 64/],
      [new PickleWriter().proto(2).op(0x6a, 0xff, 0xff, 0xff, 0xff).stop().done(), /memo entry 4294967295 was never stored/],
      [new PickleWriter().proto(2).op(0x58, 0xf0, 0xff, 0xff, 0xff).stop().done(), /a string of 4294967280 bytes/],
      [new PickleWriter().proto(2).op(0x8d, 0, 0, 0, 0, 0, 0, 0, 0x10).stop().done(), /a string of \d+ bytes/],
      [new PickleWriter().proto(2).op(0x58, 16, 0, 0, 0, 0x41).done(), /ends in the middle of an opcode/],
      [new PickleWriter().proto(2).op(0x8a, 0xff).stop().done(), /an integer of 255 bytes/],
      [new PickleWriter().proto(2).op(0x95, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff).stop().done(), /frame runs past the end/],
      [new PickleWriter().proto(2).op(0x63).op(...new Uint8Array(100_000).fill(0x61)).stop().done(), /GLOBAL name that is not a short line/],
      [new PickleWriter().proto(2).stop().done(), /pops an empty stack/],
      [new PickleWriter().proto(2).tuple(0).tuple(0).stop().done(), /STOP with values left/],
      [new PickleWriter().proto(1).stop().done(), /pickle protocol 1/],
    ];
    for (const [pkl, problem] of cases) {
      const outcome = await measure(() => refused(withPickle(pkl), problem), true);
      if (outcome.error) throw outcome.error;
      expect(outcome.ms).toBeLessThan(1000);
      expect(outcome.heapGrowth).toBeLessThan(64 * 1024 * 1024);
    }
  });

  it('a memo bigger than the limit is refused (the limit is the reader’s, not the input’s)', () => {
    const w = new PickleWriter().proto(2).op(0x4e);
    for (let i = 0; i < 20; i++) w.op(0x72, i, 0, 0, 0); // LONG_BINPUT i
    const hooks = {} as PickleHooks;
    expect(() => readPickle('f', w.op(0x2e).done(), hooks, { maxBytes: 1e6, maxStringBytes: 100, maxMemo: 10, maxStack: 100, maxMarks: 4, maxDepth: 4, maxGlobalName: 20 })).toThrow(/more than 10 memo entries/);
  });
});

describe('broken and foreign files are refused naming the file', () => {
  const tensors: TensorSpec[] = [{ name: 'w', key: '0', numel: 4, shape: [2, 2] }];
  const good = () => torchZipEntries(stateDictPickle(tensors), { 0: f32Bytes([1, 2, 3, 4]) });

  it('the legacy (pre-1.6) format, a tar, a bare pickle, not a zip at all', async () => {
    const legacy = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
    await refused(legacy, /legacy PyTorch format \(torch\.save before torch 1\.6/);
    const tar = new Uint8Array(1024);
    tar.set(new TextEncoder().encode('ustar'), 257);
    await refused(tar, /oldest PyTorch format \(a tar archive\)/);
    await refused(new PickleWriter().proto(2).op(0x4e).stop().done(), /bare pickle/);
    await refused(new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\n'), /not a PyTorch checkpoint: no zip archive/);
    await refused(Uint8Array.from([0x50]), /too short/);
  });

  it('a compressed entry, an encrypted entry, a big-endian file', async () => {
    const compressed = good();
    compressed[2]!.method = 8;
    await refused(writeZip(compressed), /zip entry "archive\/data\/0": is compressed \(method 8\)/);
    const encrypted = good();
    encrypted[0]!.flags = 1;
    await refused(writeZip(encrypted), /archive\/data\.pkl": is encrypted/);
    await refused(writeZip(torchZipEntries(stateDictPickle(tensors), { 0: f32Bytes([1, 2, 3, 4]) }, { byteorder: 'big' })), /big-endian/);
  });

  it('a truncated zip, a central directory past the end, data past the directory, overlapping and duplicate entries', async () => {
    const bytes = writeZip(good());
    for (const cut of [bytes.length - 1, bytes.length - 30, Math.floor(bytes.length / 2), 100]) await refused(bytes.subarray(0, cut), /no zip end-of-central-directory record|truncated|corrupt|past/);
    await refused(writeZip(good(), { cdOffsetDelta: 1_000_000 }), /central directory .* runs past where it must end/);
    const long = good();
    long[2]!.fakeSize = 1_000_000;
    await refused(writeZip(long), /"archive\/data\/0": its data \(1000000 bytes .*\) runs past the start of the central directory/);
    const overlap = good();
    overlap[2]!.fakeOffset = 0; // data/0's directory entry points at data.pkl's local header
    await refused(writeZip(overlap), /overlap|another file/);
    const twice = good();
    twice[3]!.name = twice[2]!.name;
    await refused(writeZip(twice), /appears twice in the archive/);
  });

  it('tensors that do not fit their storage, a non-contiguous view, a missing storage entry, a wrong storage size', async () => {
    const one = (t: TensorSpec, data = f32Bytes([1, 2, 3, 4])) => writeZip(torchZipEntries(stateDictPickle([t]), { 0: data }));
    await refused(one({ name: 'w', key: '0', numel: 4, shape: [2, 2], offset: 1 }), /tensor "w": views elements 1–5 of storage "0", which holds 4/);
    await refused(one({ name: 'w', key: '0', numel: 4, shape: [2, 2], stride: [1, 2] }), /tensor "w": is not contiguous \(size \[2, 2\], stride \[1, 2\]\)/);
    await refused(writeZip(torchZipEntries(stateDictPickle([{ name: 'w', key: '7', numel: 4, shape: [4] }]), { 0: f32Bytes([1, 2, 3, 4]) })), /storage "7" has no entry archive\/data\/7/);
    await refused(one({ name: 'w', key: '0', numel: 5, shape: [4] }), /storage "0" holds 16 bytes, but 5 elements of F32 need 20/);
    await refused(one({ name: 'w', key: '0', numel: 4, shape: [2, 2], storageType: 'ComplexFloatStorage' }), /torch\.ComplexFloatStorage/);
  });

  it('not a state dict: a list, a training checkpoint of nested dicts, TorchScript', async () => {
    await refused(withPickle(new PickleWriter().proto(2).op(0x5d).stop().done()), /holds a pickled list, not a state dict/);
    const nested = new PickleWriter().proto(2).emptyDict().str('model').global('collections', 'OrderedDict').tuple(0).reduce();
    nested.mark().str('w').global('torch._utils', '_rebuild_tensor_v2').mark().mark().str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(4).tuple().persid();
    nested.int(0).int(4).tuple(1).int(1).tuple(1).bool(false).global('collections', 'OrderedDict').tuple(0).reduce().tuple().reduce().setitems().setitem().stop();
    await refused(withPickle(nested.done()), /"model" is a dict of tensors inside the checkpoint \(a training checkpoint/);
    await refused(writeZip([{ name: 'archive/constants.pkl', data: new Uint8Array(4) }, { name: 'archive/code/x.py', data: new Uint8Array(4) }]), /TorchScript archive/);
  });

  it('the zip directory reader bounds what it reads', async () => {
    const dir = await readZipDirectory(memorySource(FILE, writeZip(good(), { zip64: true })));
    expect(dir.zip64).toBe(true);
    expect(dir.entries.map((e) => e.name)).toEqual(['archive/data.pkl', 'archive/byteorder', 'archive/data/0', 'archive/version']);
  });
});
