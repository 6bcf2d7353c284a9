/**
 * Mamba-2 against transformers (test/fixtures/golden/mamba2-*): logits at all positions, the
 * hidden state after every block, Δ [T, H], B and C [T, G·N] within relative error 1e-3, the
 * greedy continuation identical; prefill of t tokens then steps equals the longer prefill.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { readSafetensorsHeader } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import { readF32, storageBuffer } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { relativeError } from '../../app/kernels/self-test';
import { generate } from '../../app/model/generate';
import { loadWeights } from '../../app/model/loader';
import { buildModel } from '../../app/arch/build';
import { stateBuffers } from '../../app/model/mixer';
import { Session } from '../../app/model/session';
import { folderModelFiles } from '../../app/node/folder';
import { openGoldenModel, readGolden } from '../support/golden';
import { useTestGpu } from '../support/gpu';

const TOL = 1e-3;
const goldenDir = path.resolve(import.meta.dirname, '../fixtures/golden');
const cases = existsSync(goldenDir) ? readdirSync(goldenDir).filter((n) => n.startsWith('mamba2')).sort() : [];

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));

/** The logits at every position of a prefill of `ids` on a fresh session of `model` (destroyed after). */
async function promptLogits(gpu: GpuContext, model: ReturnType<typeof buildModel>, ids: number[], V: number): Promise<Float32Array> {
  const session = new Session(gpu, model);
  const logits = storageBuffer(gpu.device, 'Golden2.promptLogits', ids.length * V * 4);
  session.prefill(ids, { allLogits: logits });
  const values = await readF32(gpu.device, logits, ids.length * V);
  logits.destroy();
  session.destroy();
  model.destroy();
  return values;
}

describe('Mamba-2 against transformers (golden fixtures)', () => {
  it('has the Mamba-2 golden cases', () => {
    expect(cases).toEqual(['mamba2-8groups', 'mamba2-groups', 'mamba2-one-group']);
  });

  it.for(cases)('%s: logits, hidden states, Δ, B, C within 1e-3; greedy continuation identical; prefill then steps', async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const { inspection, weights, golden: { f32, ints }, ids } = await openGoldenModel(ctx, path.join(goldenDir, name));
    const c = inspection.config;
    const { dModel: D, dInner: Di, dState: N, nGroups: G, nHeads: H, vocabSize: V, nLayer: L } = c;
    const T = ids.length;
    const W = Di + 2 * G * N;
    const model = buildModel(ctx, inspection, weights, 512);
    const blank = model.newState();
    expect(stateBuffers(blank).reduce((sum, b) => sum + b.size, 0)).toBe(model.stateBytes);
    stateBuffers(blank).forEach((b) => b.destroy());
    const session = new Session(ctx, model);
    const f = (label: string, n: number) => storageBuffer(ctx!.device, `Golden2.${label}`, n * 4);
    const logits = f('logits', T * V);
    const taps = {
      delta: Array.from({ length: L }, (_, l) => f(`delta${l}`, T * H)),
      dbc: Array.from({ length: L }, (_, l) => f(`xbc${l}`, T * W)),
      hidden: Array.from({ length: L }, (_, l) => f(`hidden${l}`, T * D)),
    };
    session.prefill(ids, { allLogits: logits, taps });
    const logitsError = relativeError(await readF32(ctx.device, logits, T * V), await f32('logits'));
    console.info(`[golden] ${name}: GPU vs transformers, logits over ${T} positions: relative error ${logitsError.toExponential(2)}`);
    expect(logitsError, 'logits').toBeLessThanOrEqual(TOL);
    expect(relativeError(await readF32(ctx.device, model.normedBuffer, T * D), await f32(`hidden_states.${L}`)), 'final norm').toBeLessThanOrEqual(TOL);
    for (let l = 0; l < L; l++) {
      expect(relativeError(await readF32(ctx.device, taps.hidden[l]!, T * D), await f32(`hidden_states.${l}`)), `hidden ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(await readF32(ctx.device, taps.delta[l]!, T * H), await f32(`layers.${l}.delta`)), `delta ${l}`).toBeLessThanOrEqual(TOL);
      const xbc = await readF32(ctx.device, taps.dbc[l]!, T * W);
      const cols = (offset: number) => Float32Array.from({ length: T * G * N }, (_, i) => xbc[Math.floor(i / (G * N)) * W + offset + (i % (G * N))]!);
      expect(relativeError(cols(Di), await f32(`layers.${l}.B`)), `B ${l}`).toBeLessThanOrEqual(TOL);
      expect(relativeError(cols(Di + G * N), await f32(`layers.${l}.C`)), `C ${l}`).toBeLessThanOrEqual(TOL);
    }
    for (const b of [logits, ...taps.delta, ...taps.dbc, ...taps.hidden]) b.destroy();
    session.destroy();

    // Prefill of t tokens then steps equals the prefill of all of them (last row of the golden logits).
    const split = new Session(ctx, model);
    split.prefill(ids.slice(0, T - 3));
    for (const id of ids.slice(T - 3)) split.step(id);
    const golden = await f32('logits');
    expect(relativeError(await split.readLogits(), golden.subarray((T - 1) * V, T * V))).toBeLessThanOrEqual(TOL);
    split.destroy();

    const expected = await ints('generated_ids');
    const fresh = new Session(ctx, model);
    const result = await generate(ctx, fresh, await ints('generate.prompt_ids'), { maxTokens: expected.length, temperature: 0 });
    expect(result.ids).toEqual(expected);
    fresh.destroy();
    model.destroy();
    weights.destroy();
  });
});

describe('Mamba-2 with another SSD chunk length (bench --ssd-chunk)', () => {
  it("mamba2-groups (chunk_size 32) chunked by 16 and by 100: the same logits within 1e-3 of transformers'", async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { inspection, weights, golden: { f32 }, ids } = await openGoldenModel(ctx, path.join(goldenDir, 'mamba2-groups'));
    const V = inspection.config.vocabSize;
    const golden = await f32('logits');
    const { nHeads: H, headDim: P, dState: N, nGroups: G } = inspection.config;
    const plain = buildModel(ctx, inspection, weights, 512);
    const plainBytes = plain.activationBytes;
    plain.destroy();
    try {
      for (const ssdChunk of [16, 100]) {
        ctx.tuning = { ssdChunk };
        const model = buildModel(ctx, inspection, weights, 512);
        ctx.tuning = undefined;
        // The scratch is sized for the chunks asked for: chunk states K·H·P·N and C·Bᵀ K·G·L² at 512 tokens.
        const scratch = (L: number) => Math.ceil(512 / L) * (H * P * N + G * L * L) * 4;
        expect(model.activationBytes - plainBytes).toBe(scratch(ssdChunk) - scratch(32));
        expect(relativeError(await promptLogits(ctx, model, ids, V), golden), `chunks of ${ssdChunk}`).toBeLessThanOrEqual(TOL);
      }
    } finally {
      ctx.tuning = undefined;
      weights.destroy();
    }
  });
});

describe("Mamba-2 with the SSD's wide tiles (bench --ssd-tile wide)", () => {
  it.for(cases)('%s: logits within 1e-3 of transformers with chunk_states and chunk_scan in 128 × 64 tiles', async (name, test) => {
    if (!ctx) return test.skip(skipReason);
    const { inspection, weights, golden: { f32 }, ids } = await openGoldenModel(ctx, path.join(goldenDir, name));
    ctx.tuning = { ssdTile: 'wide' };
    try {
      const logits = await promptLogits(ctx, buildModel(ctx, inspection, weights, 512), ids, inspection.config.vocabSize);
      expect(relativeError(logits, await f32('logits'))).toBeLessThanOrEqual(TOL);
    } finally {
      ctx.tuning = undefined;
      weights.destroy();
    }
  });
});

describe('Mamba-2 through the CLI', () => {
  const cli = path.resolve(import.meta.dirname, '../../dist/cli/cli.js');
  it('run --json gives the golden greedy ids; trace writes delta [T, H] and B, C [T, G·N]', async (test) => {
    if (!ctx) return test.skip(skipReason);
    if (!existsSync(cli)) return test.skip('dist/cli/cli.js is not built (npm test builds it first)');
    const { spawnSync } = await import('node:child_process');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = path.join(goldenDir, 'mamba2-groups');
    const { ints } = await readGolden(dir);
    const prompt = await ints('generate.prompt_ids');
    const expected = (await ints('generated_ids')).slice(0, 6);
    const run = spawnSync(process.execPath, [cli, 'run', '--model', dir, '--input-ids', prompt.join(','), '--greedy', '--max-tokens', '6', '--json'], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ ids: expected });
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'trace2-')), 't.safetensors');
    const trace = spawnSync(process.execPath, [cli, 'trace', '--model', dir, '--input-ids', '5,17,3,9', '--out', out], { encoding: 'utf8' });
    expect(trace.status, trace.stderr).toBe(0);
    const written = readFileSync(out);
    const th = await readSafetensorsHeader(memorySource('t.safetensors', new Uint8Array(written.buffer, written.byteOffset, written.byteLength)));
    expect(th.tensors.get('layers.0.delta')?.shape).toEqual([4, 8]); // H = 8
    expect(th.tensors.get('layers.1.B')?.shape).toEqual([4, 32]); // G·N = 2·16
    expect(th.tensors.get('logits')?.shape).toEqual([4, 256]);
  });
});

describe('Mamba-2 traces that grow as tokens stream', () => {
  it('Δ per head and B, C per group, through prefill and steps, equal transformers; summaries follow', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { TraceRecorder } = await import('../../app/analysis/recorder');
    const { readAllTensorsF32 } = await import('../../app/formats/read-tensors');
    const dir = path.join(goldenDir, 'mamba2-one-group');
    const files = await folderModelFiles(dir);
    const inspection = await inspectModel(files);
    const weights = await loadWeights(ctx, files, inspection);
    const table = await readAllTensorsF32(files, inspection);
    await files.close();
    const { f32, ints } = await readGolden(dir);
    const ids = (await ints('input_ids')).slice(0, 70);
    const { nHeads: H, nGroups: G, dState: N } = inspection.config;
    const T = ids.length;
    const model = buildModel(ctx, inspection, weights, 32);
    const session = new Session(ctx, model);
    const recorder = new TraceRecorder(ctx, model, { layers: [1], capacity: 8 });
    expect(() => new TraceRecorder(ctx!, model, { extra: ['x'] })).toThrow(/Mamba-1 only/);
    session.trace(recorder);
    session.prefill(ids.slice(0, 60));
    for (const id of ids.slice(60)) session.step(id);
    const window = await recorder.read();
    // The golden taps cover the whole 200-token input; causality makes its first 70 rows ours.
    const rows = (a: Float32Array, width: number) => a.subarray(0, T * width);
    expect(relativeError(window.delta[0]!, rows(await f32('layers.1.delta'), H))).toBeLessThanOrEqual(TOL);
    expect(relativeError(window.B[0]!, rows(await f32('layers.1.B'), G * N))).toBeLessThanOrEqual(TOL);
    expect(relativeError(window.C[0]!, rows(await f32('layers.1.C'), G * N))).toBeLessThanOrEqual(TOL);
    const aLog = table.get('backbone.layers.1.mixer.A_log')!;
    const summary = await recorder.summary(() => aLog, window);
    const delta = window.delta[0]!;
    const norms = Array.from({ length: T }, (_, t) => Math.hypot(...delta.subarray(t * H, (t + 1) * H)));
    const gates = Array.from({ length: T }, (_, t) => {
      let g = 0;
      for (let h = 0; h < H; h++) g += 1 - Math.exp(delta[t * H + h]! * -Math.exp(aLog[h]!));
      return g / H;
    });
    expect(relativeError(summary.deltaNorm[0]!, norms)).toBeLessThanOrEqual(1e-5);
    expect(relativeError(summary.writeGate[0]!, gates)).toBeLessThanOrEqual(1e-5);
    recorder.destroy();
    session.destroy();
    model.destroy();
    weights.destroy();
  });
});
