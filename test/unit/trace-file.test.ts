/**
 * Trace and session files read back (app/analysis/trace-file.ts, app/analysis/session.ts):
 * random traces of odd sizes (Mamba-1 and Mamba-2, a subset of layers, with and without top-k)
 * survive the round trip exactly; files written before the summaries were exported still open
 * (‖Δ_t‖ recomputed); and hostile files — garbage, wrong format, wrong shapes, absurd sizes, bad
 * JSON, a view outside the trace — are refused with a ModelFileError naming the file, before any
 * tensor is read.
 */
import { describe, expect, it } from 'vitest';
import type { TraceResult } from '../../app/analysis/types';
import { traceResultToSafetensors } from '../../app/analysis/export';
import { readTraceFile, safetensorsToTraceResult } from '../../app/analysis/trace-file';
import { bytesToSession, encodeSession, type SessionState } from '../../app/analysis/session';
import { encodeSafetensors, type WriteTensor } from '../../app/formats/safetensors-write';
import { ModelFileError } from '../../app/formats/errors';
import type { ByteSource } from '../../app/formats/source';

let seed = 12345;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
const rand = (n: number) => Float32Array.from({ length: n }, () => (random() - 0.3) * 3);

function randomTrace(T: number, width: number, G: number, N: number, layers: number[], k: number): TraceResult {
  const mamba2 = G > 1 || width < 8;
  const delta = layers.map(() => rand(T * width));
  return {
    traceId: 'trace-1',
    modelId: 'bundled:random-model',
    architecture: mamba2 ? 'mamba2' : 'mamba',
    ids: Array.from({ length: T }, () => Math.floor(random() * 500)),
    tokens: Array.from({ length: T }, (_, t) => (t % 3 === 0 ? `⏎"${t}"` : `t${t}`)),
    layers,
    deltaWidth: width,
    deltaUnit: mamba2 ? 'head' : 'channel',
    nGroups: G,
    aStates: mamba2 ? 1 : N,
    topNext: { k, ids: Int32Array.from({ length: T * k }, () => Math.floor(random() * 500)), probs: rand(T * k) },
    delta,
    deltaNorm: delta.map(() => rand(T)),
    writeGate: delta.map(() => rand(T)),
    dState: N,
    B: layers.map(() => rand(T * G * N)),
    C: layers.map(() => rand(T * G * N)),
    A: layers.map(() => rand(width * (mamba2 ? 1 : N))),
    stateNorm: layers.map(() => rand(T)),
    ...(mamba2 ? { stateNormByHead: layers.map(() => rand(T * width)) } : {}),
  };
}

const expectSameTrace = (got: TraceResult, want: TraceResult) => {
  const { traceId: _a, ...rest } = got;
  const { traceId: _b, ...expected } = want;
  expect(rest).toEqual(expected);
};

/** Resolves to the error the promise rejects with (fails the test when it resolves). */
async function refusal(promise: Promise<unknown>): Promise<ModelFileError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelFileError);
  return error as ModelFileError;
}

const baseMetadata = (layers: number[], T: number) => ({
  format: 'mamba-studio/trace@1',
  model: 'm',
  ids: JSON.stringify(Array.from({ length: T }, (_, i) => i)),
  architecture: 'mamba',
  delta_unit: 'channel',
  layers: JSON.stringify(layers),
});
const f32 = (shape: number[]): WriteTensor => ({ dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
const baseTensors = (T: number, width: number, bc: number, layers: number[]): Record<string, WriteTensor> => ({
  input_ids: { dtype: 'I32', shape: [T], data: Int32Array.from({ length: T }, (_, i) => i) },
  ...Object.fromEntries(layers.flatMap((l) => [
    [`layers.${l}.delta`, f32([T, width])],
    [`layers.${l}.B`, f32([T, bc])],
    [`layers.${l}.C`, f32([T, bc])],
  ])),
});

describe('trace file round trip', () => {
  for (const [what, T, width, G, N, layers, k] of [
    ['Mamba-1, odd sizes, all layers', 37, 23, 1, 5, [0, 1, 2], 5],
    ['Mamba-2, a subset of layers, 3 groups', 19, 6, 3, 7, [1, 4], 3],
    ['one token, one layer, no top-k (a live trace)', 1, 1, 1, 1, [9], 0],
  ] as const) {
    it(`reads back exactly what was written (${what})`, async () => {
      const trace = randomTrace(T, width, G, N, [...layers], k);
      if (k === 0) trace.topNext = { k: 0, ids: new Int32Array(0), probs: new Float32Array(0) };
      const prompt = { text: 'hello, "world"\n[1,2]' };
      const opened = await safetensorsToTraceResult(traceResultToSafetensors(trace, prompt), 'x.safetensors');
      expectSameTrace(opened.result, trace);
      expect(opened.result.traceId).toBe('file:x.safetensors');
      expect(opened.prompt).toEqual(prompt);
    });
  }

  it('keeps an ids prompt as ids', async () => {
    const trace = randomTrace(4, 3, 1, 2, [0], 2);
    const opened = await safetensorsToTraceResult(traceResultToSafetensors(trace, { ids: [5, 17, 3] }));
    expect(opened.prompt).toEqual({ ids: [5, 17, 3] });
  });

  it('opens a file without the summaries (as written before they were exported): ‖Δ_t‖ recomputed, the rest marked missing', async () => {
    const T = 5;
    const tensors = baseTensors(T, 3, 2, [0]);
    const delta = Float32Array.from({ length: T * 3 }, (_, i) => i / 7);
    tensors['layers.0.delta'] = { dtype: 'F32', shape: [T, 3], data: delta };
    const opened = await safetensorsToTraceResult(encodeSafetensors(tensors, { ...baseMetadata([0], T), prompt: '[0,1,2,3,4]' }), 'old.safetensors');
    const r = opened.result;
    expect(r.dState).toBe(2);
    expect(r.nGroups).toBe(1);
    expect(r.tokens).toEqual(['0', '1', '2', '3', '4']);
    expect(opened.prompt).toEqual({ ids: [0, 1, 2, 3, 4] });
    for (let t = 0; t < T; t++) {
      const want = Math.hypot(delta[t * 3]!, delta[t * 3 + 1]!, delta[t * 3 + 2]!);
      expect(r.deltaNorm[0]![t]).toBeCloseTo(want, 5);
    }
    expect(Number.isNaN(r.writeGate[0]![0])).toBe(true);
    expect(r.A).toEqual([]);
    expect(r.topNext.k).toBe(0);
  });
});

describe('hostile trace files', () => {
  const T = 4;
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['garbage bytes', () => Uint8Array.from({ length: 64 }, (_, i) => (i * 37) % 256), /./],
    ['an empty file', () => new Uint8Array(0), /too short/],
    ['a model file (no trace format)', () => encodeSafetensors(baseTensors(T, 3, 2, [0]), { format: 'pt' }), /not a Mamba Studio trace/],
    ['garbage JSON in layers', () => encodeSafetensors(baseTensors(T, 3, 2, [0]), { ...baseMetadata([0], T), layers: '[0,' }), /"layers" is not valid JSON/],
    ['layers not ascending', () => encodeSafetensors(baseTensors(T, 3, 2, [0, 1]), { ...baseMetadata([0, 1], T), layers: '[1,0]' }), /ascending/],
    ['a layer without its tensors', () => encodeSafetensors(baseTensors(T, 3, 2, [0]), baseMetadata([0, 1], T)), /layers\.1\.delta/],
    ['a tensor of an unlisted layer', () => encodeSafetensors(baseTensors(T, 3, 2, [0, 2]), baseMetadata([0], T)), /layer 2/],
    ['an unknown tensor', () => encodeSafetensors({ ...baseTensors(T, 3, 2, [0]), 'model.embed': f32([2, 2]) }, baseMetadata([0], T)), /unexpected tensor "model\.embed"/],
    ['Δ widths that differ between layers', () => encodeSafetensors({ ...baseTensors(T, 3, 2, [0, 1]), 'layers.1.delta': f32([T, 4]) }, baseMetadata([0, 1], T)), /layers\.1\.delta" has shape \[4, 4\], expected \[4, 3\]/],
    ['B with the wrong token count', () => encodeSafetensors({ ...baseTensors(T, 3, 2, [0]), 'layers.0.B': f32([T + 1, 2]) }, baseMetadata([0], T)), /layers\.0\.B" has shape/],
    ['Δ stored as I32', () => encodeSafetensors({ ...baseTensors(T, 3, 2, [0]), 'layers.0.delta': { dtype: 'I32', shape: [T, 3], data: new Int32Array(T * 3) } }, baseMetadata([0], T)), /is I32, expected F32/],
    ['n_groups·d_state ≠ B width', () => encodeSafetensors(baseTensors(T, 3, 6, [0]), { ...baseMetadata([0], T), n_groups: '4', d_state: '2' }), /n_groups·d_state/],
    ['absurd n_groups', () => encodeSafetensors(baseTensors(T, 3, 6, [0]), { ...baseMetadata([0], T), n_groups: '99999999999', d_state: '2' }), /"n_groups"/],
    ['a Mamba-2 trace without n_groups', () => encodeSafetensors(baseTensors(T, 3, 6, [0]), { ...baseMetadata([0], T), delta_unit: 'head' }), /n_groups/],
    ['tokens of the wrong count', () => encodeSafetensors(baseTensors(T, 3, 2, [0]), { ...baseMetadata([0], T), tokens: '["a"]' }), /"tokens"/],
    ['ids that disagree with input_ids', () => encodeSafetensors(baseTensors(T, 3, 2, [0]), { ...baseMetadata([0], T), ids: '[9,9,9,9]' }), /does not match/],
    ['a summary for only some layers', () => encodeSafetensors({ ...baseTensors(T, 3, 2, [0, 1]), 'layers.0.write_gate': f32([T]) }, baseMetadata([0, 1], T)), /1 of 2 layers/],
    ['top_next.ids without probs', () => encodeSafetensors({ ...baseTensors(T, 3, 2, [0]), 'top_next.ids': { dtype: 'I32', shape: [T, 2], data: new Int32Array(T * 2) } }, baseMetadata([0], T)), /together/],
    ['a bad delta_unit', () => encodeSafetensors(baseTensors(T, 3, 2, [0]), { ...baseMetadata([0], T), delta_unit: 'neuron' }), /delta_unit/],
    ['negative token ids', () => encodeSafetensors({ ...baseTensors(T, 3, 2, [0]), input_ids: { dtype: 'I32', shape: [T], data: Int32Array.of(1, -2, 3, 4) } }, { ...baseMetadata([0], T), ids: '[1,-2,3,4]' }), /negative/],
  ];
  for (const [what, make, message] of cases) {
    it(`refuses ${what}, naming the file`, async () => {
      const error = await refusal(safetensorsToTraceResult(make(), 'bad.safetensors'));
      expect(error.file).toBe('bad.safetensors');
      expect(error.message).toMatch(message);
    });
  }

  it('refuses a header that claims an absurd tensor without reading or allocating it', async () => {
    // A header whose tensor claims 2^40 floats: refused from the header alone (only the header is read).
    const header = JSON.stringify({ __metadata__: baseMetadata([0], 4), input_ids: { dtype: 'I32', shape: [1 << 20, 1 << 20], data_offsets: [0, 2 ** 42] } });
    const bytes = new Uint8Array(8 + header.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(new TextEncoder().encode(header), 8);
    let largest = 0;
    const source: ByteSource = {
      name: 'huge.safetensors',
      size: bytes.length,
      async read(offset, length) {
        largest = Math.max(largest, length);
        return bytes.subarray(offset, offset + length);
      },
    };
    const error = await refusal(readTraceFile(source));
    expect(error.file).toBe('huge.safetensors');
    expect(largest).toBeLessThanOrEqual(header.length);
  });

  it('refuses a trace with more tokens than the limit before reading any tensor', async () => {
    const T2 = (1 << 20) + 1;
    const tensors = { input_ids: { dtype: 'I32' as const, shape: [T2], data: new Int32Array(T2) } };
    const error = await refusal(safetensorsToTraceResult(encodeSafetensors(tensors, baseMetadata([0], 1)), 'long.safetensors'));
    expect(error.message).toMatch(/1048577 tokens/);
  });
});

describe('session files', () => {
  const state: SessionState = {
    model: { id: 'bundled:selective-copy', name: 'Selective copying', source: 'bundled', files: ['config.json', 'model.safetensors'], sizeBytes: 1234 },
    prompts: { trace: '1, 2, 3', generate: 'ROMEO:' },
    view: { layer: 1, hoverToken: 7, memoryToken: 3, scoreMode: 'focus' },
  };

  it('round-trips the state and the trace', async () => {
    const trace = randomTrace(11, 9, 1, 3, [0, 2], 4);
    const session = await bytesToSession(encodeSession(state, { result: trace, prompt: { text: 'abc' } }), 's.mamba-session');
    expect({ model: session.model, prompts: session.prompts, view: session.view }).toEqual(state);
    expectSameTrace(session.trace!.result, trace);
    expect(session.trace!.prompt).toEqual({ text: 'abc' });
    // A session opens as a trace too (the same tensors).
    const asTrace = await safetensorsToTraceResult(encodeSession(state, { result: trace, prompt: { text: 'abc' } }));
    expectSameTrace(asTrace.result, trace);
  });

  it('round-trips a session without a trace or a model', async () => {
    const bare: SessionState = { model: null, prompts: { trace: null, generate: 'x' }, view: { layer: 0, hoverToken: null, memoryToken: null, scoreMode: null } };
    const session = await bytesToSession(encodeSession(bare, null));
    expect(session).toEqual({ ...bare, trace: null });
  });

  const withJson = (json: string) => encodeSafetensors({}, { format: 'mamba-studio/session@1', session: json });
  const hostile: [string, () => Uint8Array, RegExp][] = [
    ['garbage JSON', () => withJson('{"version":1,'), /"session" is not valid JSON/],
    ['a JSON array', () => withJson('[]'), /expected an object/],
    ['an unknown version', () => withJson(JSON.stringify({ ...state, version: 2 })), /session\.version/],
    ['a model of an unknown source', () => withJson(JSON.stringify({ version: 1, ...state, model: { ...state.model, source: 'cloud' } })), /session\.model\.source/],
    ['an unexpected key', () => withJson(JSON.stringify({ version: 1, ...state, extra: 1 })), /session\.extra: unexpected key/],
    ['a fractional layer', () => withJson(JSON.stringify({ version: 1, ...state, view: { ...state.view, layer: 0.5 } })), /session\.view\.layer/],
    ['a trace file (no session)', () => traceResultToSafetensors(randomTrace(3, 2, 1, 2, [0], 1), { text: 'a' }), /not a Mamba Studio session/],
    ['a view layer outside the trace', () => encodeSession({ ...state, view: { ...state.view, layer: 5 } }, { result: randomTrace(11, 9, 1, 3, [0, 2], 4), prompt: { text: 'a' } }), /view\.layer is 5/],
    ['a hovered token outside the trace', () => encodeSession({ ...state, view: { ...state.view, hoverToken: 11 } }, { result: randomTrace(11, 9, 1, 3, [0, 2], 4), prompt: { text: 'a' } }), /hoverToken is 11/],
  ];
  for (const [what, make, message] of hostile) {
    it(`refuses ${what}, naming the file`, async () => {
      const error = await refusal(bytesToSession(make(), 'bad.mamba-session'));
      expect(error.file).toBe('bad.mamba-session');
      expect(error.message).toMatch(message);
    });
  }
});
