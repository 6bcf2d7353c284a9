import { gguf as hfGguf } from '@huggingface/gguf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MambaConfig } from '../../app/model/config';
import { ModelFileError } from '../../app/formats/errors';
import { applyTransform, dequantize } from '../../app/formats/ggml';
import { ggufTensorTable, ggufToCanonical, openGguf, type GgufTensorEntry } from '../../app/arch/gguf';
import { GGUF_LIMITS, readGgufHeader, type GgufHeader } from '../../app/formats/gguf-reader';
import { tensorDecoder } from '../../app/formats/decode';
import { f16ToF32 } from '../../app/formats/float16';
import { blobSource, checkRange, memorySource, type ByteSource } from '../../app/formats/source';
import { checkWeights } from '../../app/arch/tensors';
import { encode, f32ToF16Bits, GT, q8_0Bytes, tinyModel, writeGguf, type GgufSpec, type TinyModelOptions } from '../support/gguf-writer';
import { seededRandom as mulberry32 } from '../../app/random';
import { modelError } from '../support/model-error';

const NAME = 'tiny.gguf';
const parse = (bytes: Uint8Array, name = NAME) => readGgufHeader(memorySource(name, bytes));

const seed = Number(process.env.GGUF_TEST_SEED ?? Date.now() % 1_000_000);


async function open(o: TinyModelOptions, name = NAME) {
  const model = tinyModel(o, mulberry32(seed));
  const source = memorySource(name, model.bytes);
  const header = await readGgufHeader(source);
  const config = ggufToCanonical(name, header);
  const table = ggufTensorTable(name, header, config);
  return { model, source, header, config, table };
}

/** One tensor's canonical values as the loader gets them: its bytes through `tensorDecoder`. */
async function loadTensor(source: ByteSource, entry: GgufTensorEntry): Promise<Float32Array> {
  checkRange(source, entry.offset, entry.byteLength, `tensor "${entry.ggufName}"`);
  return tensorDecoder({ ...entry, file: source.name, encoding: 'gguf' }).decode(await source.read(entry.offset, entry.byteLength));
}

async function expectLoadsAsExpected(source: ByteSource, table: ReturnType<typeof ggufTensorTable>, expected: Map<string, { shape: number[]; values: number[] }>, lossy: Set<string> = new Set()) {
  expect([...table.tensors.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, want] of expected) {
    const entry = table.tensors.get(name)!;
    expect(entry.shape, name).toEqual(want.shape);
    const got = await loadTensor(source, entry);
    expect(got.length, name).toBe(want.values.length);
    const tolerance = lossy.has(name) ? 0.5 / 127 + 1e-3 : entry.transform === 'log-neg' ? 1e-6 : 0;
    for (let i = 0; i < got.length; i++) {
      const w = want.values[i] as number;
      const error = Math.abs((got[i] as number) - Math.fround(w));
      if (error > tolerance * Math.max(1, Math.abs(w))) {
        throw new Error(`${name}[${i}] = ${got[i]}, expected ${w} (seed ${seed})`);
      }
    }
  }
}

describe('GGUF header', () => {
  it('parses metadata, tensor infos (dimensions reversed to row-major) and the data offset', async () => {
    const { header, model } = await open({ arch: 'mamba' });
    expect(header.version).toBe(3);
    expect(header.alignment).toBe(32);
    expect(header.dataOffset % 32).toBe(0);
    expect(header.metadata.get('general.architecture')).toBe('mamba');
    expect(header.metadata.get('mamba.attention.layer_norm_rms_epsilon')).toBe(1e-5); // f32, shown as its shortest decimal
    expect(header.metadata.get('mamba.ssm.dt_b_c_rms')).toBe(false);
    expect(header.metadata.get('tokenizer.ggml.tokens')).toHaveLength(16);
    expect(header.metadata.get('tokenizer.ggml.token_type')).toEqual(Array(16).fill(1));
    const inProj = header.tensors.get('blk.0.ssm_in.weight')!;
    expect(inProj.shape).toEqual([32, 8]);
    expect(inProj.ne).toEqual([8, 32]);
    expect(inProj.type).toBe('F32');
    expect(inProj.byteLength).toBe(32 * 8 * 4);
    expect(header.tensors.size).toBe(model.spec.tensors.length);
    for (const t of header.tensors.values()) {
      expect(t.offset % 32).toBe(0);
      expect(t.offset).toBeGreaterThanOrEqual(header.dataOffset);
    }
  });

  it('agrees with @huggingface/gguf on the same bytes (so the test writer writes real GGUF)', async () => {
    const { model, header } = await open({ arch: 'mamba2', untied: true, matrixType: 'Q8_0', dModel: 32 });
    const bytes = model.bytes;
    const fakeFetch = async (_url: string | URL | Request, init?: RequestInit) => {
      const range = /bytes=(\d+)-(\d+)/.exec(String((init?.headers as Record<string, string>).Range));
      const start = Number(range![1]);
      const end = Math.min(Number(range![2]) + 1, bytes.byteLength);
      return new Response(bytes.slice(start, end), { status: 206, headers: { 'content-range': `bytes ${start}-${end - 1}/${bytes.byteLength}` } });
    };
    const theirs = await hfGguf('https://example.invalid/tiny.gguf', { fetch: fakeFetch as typeof fetch });
    expect(Number(theirs.tensorDataOffset)).toBe(header.dataOffset);
    expect(theirs.tensorInfos.map((t) => t.name)).toEqual([...header.tensors.keys()]);
    for (const t of theirs.tensorInfos) {
      const ours = header.tensors.get(t.name)!;
      expect(t.shape.map(Number)).toEqual(ours.ne);
      expect(t.dtype).toBe(ours.typeId);
      expect(Number(t.offset) + header.dataOffset).toBe(ours.offset);
    }
    const meta = theirs.metadata as unknown as Record<string, unknown>;
    expect(meta['general.architecture']).toBe('mamba2');
    expect(meta['mamba2.ssm.group_count']).toBe(2);
    expect(meta['tokenizer.ggml.tokens']).toEqual(header.metadata.get('tokenizer.ggml.tokens'));
  });

  it('reads only the header, in bounded chunks, even when it spans many chunks', async () => {
    const V = 40_000; // a long vocabulary: the header crosses several read chunks
    const model = tinyModel({ arch: 'mamba', vocab: V, dModel: 16 }, mulberry32(seed));
    let maxEnd = 0;
    let largest = 0;
    const inner = memorySource('big.gguf', model.bytes);
    const counting: ByteSource = {
      name: inner.name,
      size: inner.size,
      read(offset, length) {
        maxEnd = Math.max(maxEnd, offset + length);
        largest = Math.max(largest, length);
        return inner.read(offset, length);
      },
    };
    const header = await readGgufHeader(counting);
    expect(header.metadata.get('tokenizer.ggml.tokens')).toHaveLength(V);
    expect((header.metadata.get('tokenizer.ggml.tokens') as string[])[V - 1]).toBe(`t${V - 1}`);
    expect(header.dataOffset).toBeGreaterThan(256 * 1024);
    expect(maxEnd).toBeLessThan(model.bytes.byteLength); // the embedding (40000 × 16 f32) is never read
    expect(maxEnd - header.dataOffset).toBeLessThanOrEqual(8 * 1024 * 1024);
    expect(largest).toBeLessThanOrEqual(8 * 1024 * 1024);
  });

  it('reads the same through a Blob', async () => {
    const model = tinyModel({ arch: 'mamba' });
    const header = await readGgufHeader(blobSource(new Blob([model.bytes as BlobPart]), 'blob.gguf'));
    expect(header.tensors.get('blk.1.ssm_a')?.offset).toBe((await parse(model.bytes)).tensors.get('blk.1.ssm_a')?.offset);
  });

  it('honours general.alignment and version 2', async () => {
    const model = tinyModel({ arch: 'mamba', alignment: 64, version: 2 });
    const header = await parse(model.bytes);
    expect(header.version).toBe(2);
    expect(header.alignment).toBe(64);
    expect(header.dataOffset % 64).toBe(0);
    const config = ggufToCanonical(NAME, header);
    await expectLoadsAsExpected(memorySource(NAME, model.bytes), ggufTensorTable(NAME, header, config), model.expected);
  });
});

describe('GGUF → canonical config and weights', () => {
  it('a tiny Mamba round-trips to the canonical config, checkWeights, and its values (A_log = log(−ssm_a))', async () => {
    const { config, table, source, model } = await open({ arch: 'mamba', matrixType: 'F16' });
    expect(config).toEqual<MambaConfig>({
      architecture: 'mamba', source: 'gguf', dModel: 8, nLayer: 2, vocabSize: 16, dInner: 16, dState: 4, dConv: 4, dtRank: 2,
      nHeads: 0, headDim: 0, nGroups: 0, chunkSize: 0, timeStepLimit: [0, Infinity], normGroupSize: 0, normEps: 1e-5, mixerRmsEps: 0,
      useBias: false, useConvBias: true, tieEmbeddings: true,
    });
    const check = checkWeights(NAME, config, table.tensors);
    expect(check.tiedHead).toBe(true);
    expect(check.warnings).toEqual([]);
    expect(table.warnings).toEqual([]);
    expect(table.normGroupSize).toBe(0);
    const conv = table.tensors.get('backbone.layers.0.mixer.conv1d.weight')!;
    expect(conv.storedShape).toEqual([16, 4]);
    expect(conv.shape).toEqual([16, 1, 4]);
    const a = table.tensors.get('backbone.layers.1.mixer.A_log')!;
    expect(a).toMatchObject({ ggufName: 'blk.1.ssm_a', transform: 'log-neg', shape: [16, 4], dtype: 'F32' });
    expect(table.tensors.get('backbone.layers.0.mixer.dt_proj.bias')?.ggufName).toBe('blk.0.ssm_dt.bias');
    expect(table.tensors.get('backbone.layers.0.mixer.in_proj.weight')?.dtype).toBe('F16');
    await expectLoadsAsExpected(source, table, model.expected);
  });

  it('a tiny Mamba-2 round-trips: heads = time_step_rank, A/D [H, 1] → [H], grouped norm → [d_inner], dt_bias', async () => {
    const { config, table, source, model } = await open({ arch: 'mamba2', untied: true, matrixType: 'Q8_0', dModel: 32 });
    expect(config).toEqual<MambaConfig>({
      architecture: 'mamba2', source: 'gguf', dModel: 32, nLayer: 2, vocabSize: 16, dInner: 64, dState: 4, dConv: 4, dtRank: 0,
      nHeads: 4, headDim: 16, nGroups: 2, chunkSize: 256, timeStepLimit: [0, Infinity], normGroupSize: 32, normEps: 1e-5, mixerRmsEps: 0,
      useBias: false, useConvBias: true, tieEmbeddings: false,
    });
    const check = checkWeights(NAME, config, table.tensors);
    expect(check.tiedHead).toBe(false);
    expect(check.warnings).toEqual([]);
    expect(table.tensors.get('backbone.layers.0.mixer.A_log')).toMatchObject({ storedShape: [4, 1], shape: [4], transform: 'log-neg' });
    expect(table.tensors.get('backbone.layers.0.mixer.D')).toMatchObject({ storedShape: [4, 1], shape: [4], transform: 'none' });
    expect(table.tensors.get('backbone.layers.0.mixer.norm.weight')).toMatchObject({ storedShape: [2, 32], shape: [64] });
    expect(table.tensors.get('backbone.layers.0.mixer.dt_bias')?.ggufName).toBe('blk.0.ssm_dt.bias');
    expect(table.tensors.get('backbone.layers.0.mixer.conv1d.weight')).toMatchObject({ storedShape: [64 + 2 * 2 * 4, 4], shape: [64 + 2 * 2 * 4, 1, 4] });
    expect(table.tensors.get('lm_head.weight')?.ggufName).toBe('output.weight');
    expect(table.normGroupSize).toBe(32); // llama.cpp normalizes per group of d_inner / n_group
    const lossy = new Set([...table.tensors.values()].filter((t) => t.dtype === 'Q8_0').map((t) => t.name));
    expect(lossy.size).toBe(4);
    await expectLoadsAsExpected(source, table, model.expected, lossy);
  });

  it('openGguf gives header, config, table and weight check in one call', async () => {
    const model = tinyModel({ arch: 'mamba2' });
    const opened = await openGguf(memorySource('m.gguf', model.bytes));
    expect(opened.config.architecture).toBe('mamba2');
    expect(opened.check.tiedHead).toBe(true);
    expect(opened.table.tensors.size).toBe(model.expected.size);
  });

  it('accepts Mamba-2 ssm_a / ssm_d stored flat as [H]', async () => {
    const { config, table, source, model } = await open({ arch: 'mamba2', flatAD: true });
    checkWeights(NAME, config, table.tensors);
    expect(table.tensors.get('backbone.layers.1.mixer.A_log')).toMatchObject({ storedShape: [4], shape: [4] });
    await expectLoadsAsExpected(source, table, model.expected);
  });

  it('takes the vocabulary from token_embd, and unknown tensors become checkWeights warnings', async () => {
    const model = tinyModel({ arch: 'mamba', vocab: 24 });
    model.spec.tensors.push({ name: 'rope_freqs.weight', shape: [4], type: 'F32', data: encode('F32', [1, 2, 3, 4]) });
    const bytes = writeGguf(model.spec);
    const header = await parse(bytes);
    const config = ggufToCanonical(NAME, header);
    expect(config.vocabSize).toBe(24);
    const check = checkWeights(NAME, config, ggufTensorTable(NAME, header, config).tensors);
    expect(check.warnings).toEqual([`${NAME}: unexpected tensor rope_freqs.weight (ignored)`]);
  });

  it('refuses other architectures, naming them', async () => {
    const model = tinyModel({ arch: 'mamba' });
    model.spec.kv[0] = { key: 'general.architecture', type: GT.STRING, value: 'llama' };
    const header = await parse(writeGguf(model.spec));
    const error = await modelError(() => ggufToCanonical(NAME, header));
    expect(error.file).toBe(NAME);
    expect(error.message).toMatch(/general\.architecture is "llama": a Llama model, not Mamba or Mamba-2/);
  });

  it('reads Falcon-Mamba: "mamba" with mamba.ssm.dt_b_c_rms = true, its mixer norm eps the layer norm eps (as llama.cpp runs it)', async () => {
    const withRms = async (value: unknown, type: number = GT.BOOL, eps = 1e-5) => {
      const model = tinyModel({ arch: 'mamba' });
      model.spec.kv = model.spec.kv.map((kv) =>
        kv.key === 'mamba.ssm.dt_b_c_rms' ? ({ ...kv, type, value } as typeof kv) : kv.key === 'mamba.attention.layer_norm_rms_epsilon' ? { ...kv, value: eps } : kv,
      );
      if (value === undefined) model.spec.kv = model.spec.kv.filter((kv) => kv.key !== 'mamba.ssm.dt_b_c_rms');
      const header = await parse(writeGguf(model.spec));
      const config = ggufToCanonical(NAME, header);
      return { config, check: checkWeights(NAME, config, ggufTensorTable(NAME, header, config).tensors) };
    };
    const falcon = await withRms(true, GT.BOOL, 0.0625);
    expect(falcon.config).toMatchObject({ architecture: 'falcon_mamba', source: 'gguf', mixerRmsEps: 0.0625, normEps: 0.0625, dtRank: 2, dState: 4 });
    expect(falcon.check.warnings).toEqual([]); // the same tensors as Mamba-1
    expect((await withRms(false)).config).toMatchObject({ architecture: 'mamba', mixerRmsEps: 0 });
    expect((await withRms(undefined)).config).toMatchObject({ architecture: 'mamba', mixerRmsEps: 0 }); // llama.cpp's default: false
    const notBool = await modelError(() => withRms(1, GT.U32));
    expect(notBool.file).toBe(NAME);
    expect(notBool.message).toMatch(/metadata "mamba\.ssm\.dt_b_c_rms" must be a boolean, got 1/);
    // llama.cpp never writes general.architecture "falcon_mamba"; such a file is refused, saying how it writes Falcon-Mamba.
    const named = tinyModel({ arch: 'mamba' });
    named.spec.kv = named.spec.kv.map((kv) =>
      kv.key === 'general.architecture' ? { ...kv, value: 'falcon_mamba' } : kv.key.startsWith('mamba.') ? { ...kv, key: kv.key.replace(/^mamba\./, 'falcon_mamba.') } : kv,
    );
    const refused = await modelError(async () => ggufToCanonical(NAME, await parse(writeGguf(named.spec))));
    expect(refused.message).toMatch(/"mamba" with mamba\.ssm\.dt_b_c_rms = true/);
  });

  it('reports missing or bad keys', async () => {
    const withKv = async (edit: (spec: GgufSpec) => void) => {
      const model = tinyModel({ arch: 'mamba2' });
      edit(model.spec);
      return ggufToCanonical(NAME, await parse(writeGguf(model.spec)));
    };
    const missing = await modelError(() => withKv((s) => void (s.kv = s.kv.filter((kv) => kv.key !== 'mamba2.ssm.group_count'))));
    expect(missing.message).toMatch(/missing required metadata key "mamba2.ssm.group_count"/);
    const notDividing = await modelError(() => withKv((s) => void (s.kv = s.kv.map((kv) => (kv.key === 'mamba2.ssm.time_step_rank' ? { ...kv, value: 3 } : kv)))));
    expect(notDividing.message).toMatch(/not a multiple of the head count/);
    const negative = await modelError(() => withKv((s) => void (s.kv = s.kv.map((kv) => (kv.key === 'mamba2.block_count' ? { ...kv, type: GT.I32, value: -1 } : kv)))));
    expect(negative.message).toMatch(/"mamba2.block_count" must be an integer ≥ 1, got -1/);
  });

  it('a shape that disagrees with the metadata is caught by checkWeights, naming the tensor', async () => {
    const model = tinyModel({ arch: 'mamba' });
    const t = model.spec.tensors.find((x) => x.name === 'blk.1.ssm_x.weight')!;
    t.shape = [t.shape[0]! - 1, t.shape[1]!];
    t.data = encode('F32', new Array(t.shape[0]! * t.shape[1]!).fill(0));
    const header = await parse(writeGguf(model.spec));
    const config = ggufToCanonical(NAME, header);
    const error = await modelError(() => checkWeights(NAME, config, ggufTensorTable(NAME, header, config).tensors));
    expect(error.message).toMatch(/backbone\.layers\.1\.mixer\.x_proj\.weight has shape \[9, 16\], expected \[10, 16\]/);
  });
});

describe('GGUF dequantization', () => {
  it('Q8_0 equals d·q computed directly from the bytes, on random data', () => {
    const rand = mulberry32(seed);
    const blocks = 37;
    const bytes = new Uint8Array(blocks * 34);
    const view = new DataView(bytes.buffer);
    const expected: number[] = [];
    for (let b = 0; b < blocks; b++) {
      const scaleBits = f32ToF16Bits((rand() - 0.5) * 2 ** (rand() * 20 - 14));
      view.setUint16(b * 34, scaleBits, true);
      const d = f16ToF32(scaleBits);
      for (let j = 0; j < 32; j++) {
        const q = Math.floor(rand() * 256) - 128;
        view.setInt8(b * 34 + 2 + j, q);
        expected.push(Math.fround(d * q));
      }
    }
    const got = dequantize(NAME, { name: 'w', dtype: 'Q8_0' }, bytes);
    expect(Array.from(got)).toEqual(expected);
    // An unaligned slice of the same blocks decodes the same.
    const shifted = new Uint8Array(bytes.byteLength + 1);
    shifted.set(bytes, 1);
    expect(Array.from(dequantize(NAME, { name: 'w', dtype: 'Q8_0' }, shifted.subarray(1)))).toEqual(expected);
  });

  it('Q8_0 quantization error stays within half a step of each block', () => {
    const rand = mulberry32(seed + 1);
    const values = Array.from({ length: 32 * 9 }, () => (rand() - 0.5) * 6);
    const got = dequantize(NAME, { name: 'w', dtype: 'Q8_0' }, q8_0Bytes(values));
    for (let b = 0; b < 9; b++) {
      const block = values.slice(b * 32, b * 32 + 32);
      const step = Math.max(...block.map(Math.abs)) / 127;
      for (let j = 0; j < 32; j++) expect(Math.abs((got[b * 32 + j] as number) - (block[j] as number))).toBeLessThanOrEqual(step * 0.57) // ½ step, plus the f16 rounding of the scale (≤ 2⁻¹¹ relative) × 127;
    }
  });

  it('F32, F16 and BF16 decode exactly, aligned or not', () => {
    // All exactly representable in f16; BF16 keeps 8 bits of mantissa, so 65504 truncates to 65280.
    const values = [0, -0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, Infinity, -Infinity, 3.140625];
    const expected = { F32: values, F16: values, BF16: values.map((x) => (x === 65504 ? 65280 : x)) };
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const bytes = encode(dtype, values);
      const shifted = new Uint8Array(bytes.byteLength + 1);
      shifted.set(bytes, 1);
      for (const b of [bytes, shifted.subarray(1)]) {
        const got = Array.from(dequantize(NAME, { name: 'w', dtype }, b));
        expect(got, dtype).toEqual(expected[dtype]); // toEqual tells -0 from 0
      }
    }
  });

  it('other types are refused, naming the tensor and the type', async () => {
    const error = await modelError(() => dequantize(NAME, { name: 'blk.0.ssm_in.weight', dtype: 'Q2_K' }, new Uint8Array(84)));
    expect(error.file).toBe(NAME);
    expect(error.message).toBe(`${NAME}: tensor "blk.0.ssm_in.weight": Q2_K is not supported; use a GGUF in F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K`);
  });

  it('log-neg turns −exp(A_log) back into A_log and refuses positive A', async () => {
    const aLog = [-3, 0, 0.5, 2.7725887];
    const values = Float32Array.from(aLog.map((v) => -Math.exp(v)));
    const got = applyTransform(NAME, { name: 'x', transform: 'log-neg' }, values);
    aLog.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
    expect(applyTransform(NAME, { name: 'x', transform: 'log-neg' }, Float32Array.from([0]))[0]).toBe(-Infinity);
    const error = await modelError(() => applyTransform(NAME, { name: 'A_log', ggufName: 'blk.0.ssm_a', transform: 'log-neg' }, Float32Array.from([-1, 0.5])));
    expect(error.message).toMatch(/tensor "blk\.0\.ssm_a" holds 0\.5 at index 1/);
  });
});

describe('GGUF bad input: every case a ModelFileError naming the file', () => {
  const base = () => tinyModel({ arch: 'mamba' }, mulberry32(seed));
  const rejects = async (bytes: Uint8Array, pattern: RegExp, name = 'bad.gguf') => {
    const error = await modelError(async () => {
      const header: GgufHeader = await parse(bytes, name);
      const config = ggufToCanonical(name, header);
      ggufTensorTable(name, header, config);
    });
    expect(error.file).toBe(name);
    expect(error.message.startsWith(`${name}: `)).toBe(true);
    expect(error.message).toMatch(pattern);
    return error;
  };

  it('wrong magic', async () => {
    await rejects(writeGguf({ ...base().spec, magic: 'GGML' }), /not a GGUF file \(magic "GGML", expected "GGUF"\)/);
    await rejects(writeGguf({ ...base().spec, magic: new Uint8Array([0x89, 0x50, 0x4e, 0x47]) }), /not a GGUF file \(magic 89 50 4e 47/);
    await rejects(new Uint8Array([0x47, 0x47]), /not a GGUF file \(only 2 bytes\)/);
  });

  it('version 1, version 99 and big-endian files', async () => {
    await rejects(writeGguf({ ...base().spec, version: 1 }), /GGUF version 1 is not supported/);
    await rejects(writeGguf({ ...base().spec, version: 99 }), /unsupported GGUF version 99/);
    await rejects(writeGguf({ ...base().spec, version: 0x03000000 }), /big-endian GGUF/);
  });

  it('truncated header, at every cut inside it', async () => {
    const bytes = base().bytes;
    const dataOffset = (await parse(bytes)).dataOffset;
    for (let cut = 0; cut < dataOffset; cut += 7) {
      await rejects(bytes.subarray(0, cut), /truncated|not a GGUF file|past the end/);
    }
  });

  it('tensor data past the end of the file', async () => {
    const bytes = base().bytes;
    await rejects(bytes.subarray(0, bytes.byteLength - 40), /tensor "[^"]+": bytes \d+–\d+ lie past the end of the file .* truncated/);
  });

  it('unknown metadata value types and array item types', async () => {
    const spec = base().spec;
    spec.kv.splice(2, 0, { key: 'weird.key', type: 13, value: 0, raw: new Uint8Array(8) });
    await rejects(writeGguf(spec), /metadata "weird\.key": unknown value type 13/);
    const spec2 = base().spec;
    spec2.kv.push({ key: 'weird.array', type: GT.ARRAY, value: 0, raw: (() => { const b = new Uint8Array(12); new DataView(b.buffer).setUint32(0, 200, true); return b; })() });
    await rejects(writeGguf(spec2), /metadata "weird\.array": unknown array item type 200/);
  });

  it('absurd counts and lengths are capped before anything is allocated', async () => {
    await rejects(writeGguf({ ...base().spec, tensorCount: 2n ** 40n }), /tensor count 1099511627776 is larger than any real model's/);
    await rejects(writeGguf({ ...base().spec, kvCount: 2n ** 62n }), /metadata count \d+ is larger than any real file's/);
    const longString = base().spec;
    longString.kv.push({ key: 'long', type: GT.STRING, value: '', raw: (() => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, 2n ** 50n, true); return b; })() });
    await rejects(writeGguf(longString), /metadata "long": string length \d+ is larger than the limit/);
    const longArray = base().spec;
    longArray.kv.push({ key: 'arr', type: GT.ARRAY, value: 0, raw: (() => { const b = new Uint8Array(12); const v = new DataView(b.buffer); v.setUint32(0, GT.U8, true); v.setBigUint64(4, 2n ** 33n, true); return b; })() });
    await rejects(writeGguf(longArray), /metadata "arr": array length \d+ is larger than the limit/);
    const deepArray = base().spec;
    deepArray.kv.push({ key: 'deep', type: GT.ARRAY, value: 0, raw: (() => { const b = new Uint8Array(12 * 6); const v = new DataView(b.buffer); for (let i = 0; i < 6; i++) { v.setUint32(12 * i, GT.ARRAY, true); v.setBigUint64(12 * i + 4, 1n, true); } return b; })() });
    await rejects(writeGguf(deepArray), /metadata "deep": arrays nested deeper than 4/);
    // A header larger than the cap (here a small one, to keep the test fast).
    const error = await modelError(() => readGgufHeader(memorySource('bad.gguf', base().bytes), { maxHeaderBytes: 200 }));
    expect(error.message).toMatch(/header is larger than 200 bytes/);
    expect(GGUF_LIMITS.maxHeaderBytes).toBeGreaterThan(10 * 1024 * 1024);
  });

  it('bad tensor infos: too many dims, unknown ggml type, misaligned, overlapping, duplicate, bad alignment', async () => {
    const dims = base().spec;
    dims.tensors[0]!.shape = [1, 1, 1, 16, 8];
    await rejects(writeGguf(dims), /tensor "token_embd\.weight": 5 dimensions/);
    const misaligned = base().spec;
    misaligned.tensors[1]!.offset = 8;
    await rejects(writeGguf(misaligned), /tensor "blk\.0\.attn_norm\.weight": offset 8 is not a multiple of the alignment 32/);
    const overlapping = base().spec;
    overlapping.tensors[2]!.offset = 32;
    await rejects(writeGguf(overlapping), /overlaps tensor/);
    const duplicate = base().spec;
    duplicate.tensors[2]!.name = duplicate.tensors[1]!.name;
    await rejects(writeGguf(duplicate), /tensor "blk\.0\.attn_norm\.weight": appears twice/);
    const dupKey = base().spec;
    dupKey.kv.push({ ...dupKey.kv[1]! });
    await rejects(writeGguf(dupKey), /metadata key "general\.name" appears twice/);
    const badAlign = base().spec;
    badAlign.kv.push({ key: 'general.alignment', type: GT.U32, value: 48 });
    badAlign.alignment = 48;
    await rejects(writeGguf(badAlign), /general\.alignment 48 is not a power of two/);
    const unknownType = writeGguf(base().spec);
    const header = await parse(unknownType);
    // Patch the type id of the last tensor info (4 bytes before its u64 offset) to 31, a removed type.
    const last = [...header.tensors.values()].at(-1)!;
    const infoEnd = findTensorInfoEnd(unknownType, last.name);
    new DataView(unknownType.buffer).setUint32(infoEnd - 12, 31, true);
    await rejects(unknownType, new RegExp(`tensor "${last.name.replace(/\./g, '\\.')}": unknown ggml tensor type 31`));
  });

  it('an unsupported quantization type', async () => {
    const model = tinyModel({ arch: 'mamba', dModel: 256 }, mulberry32(seed));
    const spec = model.spec;
    for (const t of spec.tensors) {
      if (t.name.endsWith('ssm_in.weight') || t.name.endsWith('ssm_out.weight')) {
        t.type = 'Q2_K';
        t.data = encode('Q2_K', new Array(t.shape.reduce((a, b) => a * b, 1)).fill(0));
      }
    }
    await rejects(writeGguf(spec), /tensor "blk\.0\.ssm_in\.weight": Q2_K is not supported; use a GGUF in F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K \(4 tensors are Q2_K\)/);
  });

  it('architecture "llama"', async () => {
    const spec = base().spec;
    spec.kv[0] = { key: 'general.architecture', type: GT.STRING, value: 'llama' };
    await rejects(writeGguf(spec), /"llama": a Llama model/);
  });

  it('random corruptions of a valid file never throw anything but ModelFileError, nor read past the file', async () => {
    const valid = tinyModel({ arch: 'mamba2', dModel: 4, nLayer: 1, vocab: 8 }, mulberry32(seed)).bytes;
    const headerEnd = (await parse(valid)).dataOffset;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ at: fc.nat({ max: headerEnd - 1 }), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }),
        fc.option(fc.nat({ max: valid.byteLength }), { nil: undefined }),
        async (edits, cut) => {
          const bytes = valid.slice(0, cut ?? valid.byteLength);
          for (const e of edits) if (e.at < bytes.byteLength) bytes[e.at] = e.value;
          let read = 0;
          const inner = memorySource('fuzz.gguf', bytes);
          const source: ByteSource = { name: inner.name, size: inner.size, read: (o, n) => { read += n; return inner.read(o, n); } };
          try {
            const header = await readGgufHeader(source);
            const config = ggufToCanonical('fuzz.gguf', header);
            const table = ggufTensorTable('fuzz.gguf', header, config);
            checkWeights('fuzz.gguf', config, table.tensors);
            for (const entry of table.tensors.values()) await loadTensor(source, entry);
          } catch (error) {
            if (!(error instanceof ModelFileError)) throw error;
            expect(error.file).toBe('fuzz.gguf');
          }
          expect(read).toBeLessThanOrEqual(2 * bytes.byteLength); // the header once (bounded by the file), each tensor once
        },
      ),
      { numRuns: 300, seed },
    );
  });
});

/** Offset just past a tensor info (name, n_dims, dims, type, offset) in a GGUF file. */
function findTensorInfoEnd(bytes: Uint8Array, name: string): number {
  const needle = new TextEncoder().encode(name);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  for (let i = bytes.byteLength - needle.length; i >= 8; i--) {
    if (needle.every((b, j) => bytes[i + j] === b) && view.getBigUint64(i - 8, true) === BigInt(needle.length)) {
      const after = i + needle.length;
      const nDims = view.getUint32(after, true);
      return after + 4 + 8 * nDims + 4 + 8;
    }
  }
  throw new Error(`tensor info ${name} not found`);
}
