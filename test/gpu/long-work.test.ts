/**
 * Long analysis work through `Engine.handle` (issue 15, defect 7), on a tiny random Mamba-1 with
 * prompts of several chunks (the model's maxTokens is 256):
 * - trace, hidden attention and knockout report 'work-progress' that increases to its total;
 *   hidden attention's full matrix, run in row bands, equals the float64 reference;
 * - a `cancel` sent at the first progress event makes the request fail with "Cancelled." (the
 *   analysis checks its signal between GPU submits), and the engine then runs the same request
 *   to the end, with results equal to an uncancelled run's;
 * - knockout's KL per position, from the knocked token on, equals the float64 reference's
 *   (mamba1ForwardRef with and without the knockout), across a chunk boundary.
 * Before this, there was no `cancel` request and no progress but the trace's, and a knockout
 * compared the last position only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../app/engine/engine';
import { CANCELLED_MESSAGE } from '../../app/analysis/cancel';
import { klDivergence, softmax } from '../../app/analysis/distributions';
import { knockoutWork } from '../../app/analysis/knockout';
import type { CancellableKind, EngineEvent, EngineRequest, EngineRequestKind, EngineRequests } from '../../app/engine/protocol';
import { inspectModel } from '../../app/arch/inspect';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { mamba1ForwardRef } from '../../app/arch/mamba1/reference';
import { hiddenAttentionRef } from '../../app/kernels/hidden-attention.ref';
import { relativeError } from '../../app/kernels/self-test';
import { folderModelFiles } from '../../app/node/folder';
import { testSeed, useNodeGpu } from '../support/gpu';
import { writeRandomMamba1 } from '../support/random-model';
import { filesSource } from '../support/engine-source';

const RAW = { model_type: 'mamba', vocab_size: 37, hidden_size: 24, num_hidden_layers: 2, state_size: 6, time_step_rank: 3 };
/** Float32 GPU vs float64 reference through a whole model (as in the other model tests). */
const TOL = 1e-4;
const scratch = mkdtempSync(path.join(tmpdir(), 'long-work-'));
let gpu: GPU | null = null;
let skipReason = '';

useNodeGpu((found) => ({ gpu, skipReason } = found));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

type Progress = Extract<EngineEvent, { kind: 'work-progress' }>;

/** An engine on a fresh random model, with a sender, the progress events seen, and a way to cancel a request at its first progress. */
async function setup() {
  writeRandomMamba1(scratch, RAW, testSeed());
  const files = await folderModelFiles(scratch);
  const inspection = await inspectModel(files);
  const table = await readAllTensorsF32(files, inspection);
  await files.close();
  const progress: Progress[] = [];
  let cancelAt: { kind: CancellableKind; by: 'id' | 'kind' } | null = null;
  let id = 1;
  // eslint-disable-next-line prefer-const -- the engine's event callback needs it before it exists
  let engine: Engine;
  const onEvent = (event: EngineEvent) => {
    if (event.kind !== 'work-progress') return;
    progress.push(event);
    if (event.work === cancelAt?.kind && event.done < event.total) {
      const params = cancelAt.by === 'id' ? { requestId: event.requestId } : { kind: event.work };
      cancelAt = null;
      // The handler aborts synchronously: the running request stops at its next check.
      void engine.handle({ id: id++, kind: 'cancel', params });
    }
  };
  engine = new Engine(gpu!, onEvent, 'node');
  const send = async <K extends EngineRequestKind>(kind: K, params: EngineRequests[K]['params']): Promise<EngineRequests[K]['result']> => {
    const reply = await engine.handle({ id: id++, kind, params } as EngineRequest);
    if (!reply.ok) throw new Error(reply.error);
    return reply.result as EngineRequests[K]['result'];
  };
  await send('loadModel', { modelId: 'm', source: filesSource(scratch) });
  return { config: inspection.config, table, send, progress, cancelNext: (kind: CancellableKind, by: 'id' | 'kind' = 'id') => (cancelAt = { kind, by }) };
}

/** The progress of the latest request of `kind`: it increases, and ends at its total. */
function expectCompleteProgress(progress: Progress[], kind: CancellableKind, total: number) {
  const last = progress.filter((p) => p.work === kind).at(-1)!;
  const mine = progress.filter((p) => p.requestId === last.requestId);
  expect(mine.length, `${kind}: more than one progress event`).toBeGreaterThan(1);
  for (let i = 1; i < mine.length; i++) expect(mine[i]!.done).toBeGreaterThan(mine[i - 1]!.done);
  expect(mine.every((p) => p.total === total)).toBe(true);
  expect(mine.at(-1)!.done).toBe(total);
}

const ids = (T: number, V: number) => Array.from({ length: T }, (_, t) => (t * 7 + 3 + ((t * t) % 5)) % V);

describe('long work: progress and cancel', () => {
  it('trace, hidden attention and knockout cancelled mid-way fail with "Cancelled."; the engine then runs them to the same results', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const { config, table, send, progress, cancelNext } = await setup();
    const prompt = { ids: ids(260, config.vocabSize) };
    const T = prompt.ids.length;

    // Trace: two chunks of 256 tokens.
    const reference = await send('trace', { modelId: 'm', prompt });
    cancelNext('trace');
    await expect(send('trace', { modelId: 'm', prompt })).rejects.toThrow(CANCELLED_MESSAGE);
    const cancelledTrace = progress.filter((p) => p.work === 'trace').at(-1)!;
    expect(cancelledTrace.done).toBeLessThan(T);
    const again = await send('trace', { modelId: 'm', prompt });
    expectCompleteProgress(progress, 'trace', T);
    expect({ ...again, traceId: '' }).toEqual({ ...reference, traceId: '' });

    // Hidden attention, the mean over channels: the matrix in row bands (here 3).
    const params = { modelId: 'm', traceId: again.traceId, layer: 1, unit: 'mean' as const };
    const full = await send('hiddenAttention', params);
    expectCompleteProgress(progress, 'hiddenAttention', T);
    // The bands make the whole matrix: the float64 reference on the trace's own Δ, B, C.
    const li = again.layers.indexOf(1);
    const expected = hiddenAttentionRef(again.delta[li]!, again.B[li]!, again.C[li]!, table.get('backbone.layers.1.mixer.A_log')!, T, config.dInner, config.dState, 'mean');
    expect(relativeError(full.alpha, expected), 'α in bands vs reference').toBeLessThanOrEqual(TOL);
    cancelNext('hiddenAttention');
    await expect(send('hiddenAttention', params)).rejects.toThrow(CANCELLED_MESSAGE);
    expect(progress.filter((p) => p.work === 'hiddenAttention').at(-1)!.done).toBeLessThan(T);
    const fullAgain = await send('hiddenAttention', params);
    expect(fullAgain.alpha).toEqual(full.alpha);

    // Knockout of token 100: the prefix, then both runs; cancelled by kind.
    const knock = { modelId: 'm', traceId: again.traceId, token: 100, k: 5 };
    const knocked = await send('knockout', knock);
    expectCompleteProgress(progress, 'knockout', knockoutWork(T, 100));
    cancelNext('knockout', 'kind');
    await expect(send('knockout', knock)).rejects.toThrow(CANCELLED_MESSAGE);
    expect(progress.filter((p) => p.work === 'knockout').at(-1)!.done).toBeLessThan(knockoutWork(T, 100));
    expect(await send('knockout', knock)).toEqual(knocked);

    // Cancelling when nothing runs cancels nothing; by kind, too.
    expect(await send('cancel', { kind: 'trace' })).toEqual({ cancelled: 0 });
  }, 240_000);

  it("knockout's KL per position equals the float64 reference's, from the knocked token on", async (test) => {
    if (!gpu) return test.skip(skipReason);
    const { config, table, send } = await setup();
    const V = config.vocabSize;
    const prompt = ids(300, V);
    const T = prompt.length;
    const trace = await send('trace', { modelId: 'm', prompt: { ids: prompt } });
    const base = mamba1ForwardRef(config, (n) => table.get(n), prompt);
    // Token 20: the knocked runs cross the chunk boundary at 276.
    for (const [token, layers] of [
      [20, [0]],
      [20, null],
      [T - 1, null],
    ] as const) {
      const ref = mamba1ForwardRef(config, (n) => table.get(n), prompt, 'backbone.', { token, layers });
      const expected = Array.from({ length: T - token }, (_, i) => {
        const row = (logits: Float64Array) => logits.subarray((token + i) * V, (token + i + 1) * V);
        return klDivergence(softmax(row(base.logits)), softmax(row(ref.logits)));
      });
      const result = await send('knockout', { modelId: 'm', traceId: trace.traceId, token, ...(layers ? { layers: [...layers] } : {}) });
      expect(result.klByPosition).toHaveLength(T - token);
      expect(result.kl).toBe(result.klByPosition.at(-1));
      expect(expected[0]!, 'the knocked token itself changes the next-token distribution').toBeGreaterThan(0);
      result.klByPosition.forEach((kl, i) => {
        const want = expected[i]!;
        expect(Math.abs(kl - want), `KL at position ${token + i} (token ${token}, layers ${layers ?? 'all'})`).toBeLessThanOrEqual(TOL * Math.max(want, 1e-3));
      });
    }
  }, 240_000);
});
