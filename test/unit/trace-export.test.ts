/**
 * The app's trace export (app/analysis/export.ts): the bytes parse with the project's safetensors
 * reader, every tensor holds exactly the TraceResult's numbers under the model's layer numbers,
 * and the metadata carries the format, model id, ids and prompt.
 */
import { describe, expect, it } from 'vitest';
import type { TraceResult } from '../../app/engine/protocol';
import { readSafetensorsHeader, readTensorBytes, toFloat32, toIntegers } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import { traceResultToSafetensors } from '../../app/analysis/export';

const rand = (n: number) => Float32Array.from({ length: n }, () => (Math.random() - 0.3) * 3);

function randomTrace(T: number, width: number, G: number, N: number, layers: number[], k: number): TraceResult {
  const delta = layers.map(() => rand(T * width));
  return {
    traceId: 'trace-1',
    modelId: 'random-model',
    architecture: G > 1 ? 'mamba2' : 'mamba',
    ids: Array.from({ length: T }, () => Math.floor(Math.random() * 500)),
    tokens: Array.from({ length: T }, (_, t) => `t${t}`),
    layers,
    deltaWidth: width,
    deltaUnit: G > 1 ? 'head' : 'channel',
    nGroups: G,
    aStates: G > 1 ? 1 : N,
    topNext: { k, ids: Int32Array.from({ length: T * k }, () => Math.floor(Math.random() * 500)), probs: rand(T * k) },
    delta,
    deltaNorm: delta.map(() => rand(T)),
    writeGate: delta.map(() => rand(T)),
    dState: N,
    B: layers.map(() => rand(T * G * N)),
    C: layers.map(() => rand(T * G * N)),
    A: layers.map(() => rand(width * (G > 1 ? 1 : N))),
    stateNorm: layers.map(() => rand(T)),
  };
}

async function read(bytes: Uint8Array) {
  const source = memorySource('trace.safetensors', bytes);
  const header = await readSafetensorsHeader(source);
  const tensor = async (name: string) => {
    const info = header.tensors.get(name);
    if (!info) throw new Error(`no tensor ${name}`);
    const raw = await readTensorBytes(source, info);
    return { info, raw };
  };
  return { header, tensor };
}

describe('trace export (safetensors)', () => {
  for (const [what, T, width, G, N, layers, k] of [
    ['Mamba-1, all layers', 37, 24, 1, 5, [0, 1, 2], 5],
    ['Mamba-2, a subset of layers', 19, 6, 2, 3, [1, 4], 3],
  ] as const) {
    it(`holds the trace's numbers and metadata (${what})`, async () => {
      const trace = randomTrace(T, width, G, N, [...layers], k);
      const prompt = { text: 'hello, "world"\n' };
      const { header, tensor } = await read(traceResultToSafetensors(trace, prompt));
      expect(header.metadata.format).toBe('mamba-studio/trace@1');
      expect(header.metadata.model).toBe('random-model');
      expect(JSON.parse(header.metadata.ids!)).toEqual(trace.ids);
      expect(header.metadata.prompt).toBe(prompt.text);
      expect(JSON.parse(header.metadata.layers!)).toEqual([...layers]);
      // Δ, B, C, and the summaries a trace opened without its model shows (app/analysis/trace-file.ts).
      const perLayer = ['delta', 'B', 'C', 'delta_norm', 'write_gate', 'state_norm', 'A'];
      const names = ['input_ids', ...layers.flatMap((l) => perLayer.map((n) => `layers.${l}.${n}`)), 'top_next.ids', 'top_next.probs'];
      expect([...header.tensors.keys()].sort()).toEqual([...names].sort());

      const ids = await tensor('input_ids');
      expect(ids.info.dtype).toBe('I32');
      expect(ids.info.shape).toEqual([T]);
      expect(toIntegers(ids.info, ids.raw)).toEqual(trace.ids);
      for (const [i, l] of layers.entries()) {
        for (const [name, data, cols] of [
          ['delta', trace.delta[i]!, width],
          ['B', trace.B[i]!, G * N],
          ['C', trace.C[i]!, G * N],
        ] as const) {
          const t = await tensor(`layers.${l}.${name}`);
          expect(t.info.dtype).toBe('F32');
          expect(t.info.shape).toEqual([T, cols]);
          expect([...toFloat32(t.info, t.raw)]).toEqual([...data]);
        }
      }
      const topIds = await tensor('top_next.ids');
      expect(topIds.info.shape).toEqual([T, k]);
      expect(toIntegers(topIds.info, topIds.raw)).toEqual([...trace.topNext.ids]);
      const topProbs = await tensor('top_next.probs');
      expect(topProbs.info.shape).toEqual([T, k]);
      expect([...toFloat32(topProbs.info, topProbs.raw)]).toEqual([...trace.topNext.probs]);
      // No logits: the UI's trace does not keep them.
      expect(header.tensors.has('logits')).toBe(false);
    });
  }

  it('writes an ids prompt as JSON in the metadata', async () => {
    const trace = randomTrace(4, 3, 1, 2, [0], 2);
    const { header } = await read(traceResultToSafetensors(trace, { ids: [5, 17, 3] }));
    expect(header.metadata.prompt).toBe('[5,17,3]');
  });
});
