/**
 * Long work in the renderer (issue 15, defect 7), pure parts:
 * - the store's trace slice keeps the last finished trace on screen while a new one runs and after
 *   it fails, gives it back as it was when the run is cancelled, and drops it only when a new
 *   trace (or another model's run) replaces it; 'work-progress' events land by request id and on
 *   the running trace they belong to;
 * - hidden attention's row bands cover every row once, in order, of about equal work;
 * - knockout's KL per position as a curve over the prompt, its peak and CSV columns;
 * - cancellation is told from failure by the engine's message.
 * Before: a running trace replaced the finished one (the panels went blank until it was done).
 */
import { describe, expect, it } from 'vitest';
import type { TraceResult } from '../../app/engine/protocol';
import { CANCELLED_MESSAGE, CancelledError, isCancelled, throwIfCancelled } from '../../app/analysis/cancel';
import { rowBands } from '../../app/analysis/hidden-attention';
import { createStudioStore, traceOnScreen, type DoneTraceRun } from '../../renderer/src/store';
import { klCurve, klPeak, klPositionColumns } from '../../renderer/src/panels/knockout-positions';
import { progressText } from '../../renderer/src/panels/LongWork';

const result = (traceId: string) => ({ traceId, modelId: 'm', ids: [1, 2, 3] }) as unknown as TraceResult;
const done = (traceId: string, modelId = 'm'): DoneTraceRun => ({ state: 'done', modelId, result: result(traceId) });

describe('trace slice: the previous trace stays on screen', () => {
  it('while a new trace runs, after it fails, and again when it is cancelled; a new trace replaces it', () => {
    const store = createStudioStore();
    const s = () => store.getState();
    s().setTrace(done('t1'));
    s().setTrace({ state: 'running', modelId: 'm', requestId: 7 });
    expect(traceOnScreen(s().trace)).toEqual({ run: done('t1'), stale: true });
    s().setWorkProgress({ requestId: 7, work: 'trace', modelId: 'm', done: 256, total: 600, unit: 'tokens' });
    s().setWorkProgress({ requestId: 8, work: 'trace', modelId: 'm', done: 1, total: 2, unit: 'tokens' });
    expect(s().trace).toMatchObject({ state: 'running', requestId: 7, progress: { done: 256, total: 600 } });
    expect(Object.keys(s().workProgress)).toEqual(['7', '8']);
    s().endWork(8);
    expect(Object.keys(s().workProgress)).toEqual(['7']);

    s().cancelTrace('m');
    expect(s().trace).toEqual(done('t1'));

    s().setTrace({ state: 'running', modelId: 'm', requestId: 9 });
    s().setTrace({ state: 'failed', modelId: 'm', message: 'boom' });
    expect(s().trace).toMatchObject({ state: 'failed', message: 'boom' });
    expect(traceOnScreen(s().trace)?.run.result.traceId).toBe('t1');

    s().setTrace({ state: 'running', modelId: 'm', requestId: 10 });
    s().setTrace(done('t2'));
    expect(traceOnScreen(s().trace)).toEqual({ run: done('t2'), stale: false });
  });

  it("keeps no trace of another model, and nothing when there was none; a cancel with none shows none", () => {
    const store = createStudioStore();
    const s = () => store.getState();
    s().setTrace({ state: 'running', modelId: 'm' });
    expect(traceOnScreen(s().trace)).toBeNull();
    s().cancelTrace('m');
    expect(s().trace).toBeNull();
    s().setTrace(done('t1', 'other'));
    s().setTrace({ state: 'running', modelId: 'm' });
    expect(traceOnScreen(s().trace)).toBeNull();
  });

  it('keeps the hovered token while the previous trace is shown', () => {
    const store = createStudioStore();
    const s = () => store.getState();
    s().setTrace(done('t1'));
    s().setTraceHoverToken(2);
    s().setTrace({ state: 'running', modelId: 'm' });
    expect(s().traceHoverToken).toBe(2);
  });
});

describe('hidden attention row bands', () => {
  it.each([
    [1, 1e12],
    [19, 10],
    [300, 2 ** 26],
    [2000, 8e9],
    [2001, 1e15],
  ])('T=%i, work %d: every row once, in order, about equal work', (T, work) => {
    const bands = rowBands(T, work);
    expect(bands[0]?.[0]).toBe(0);
    expect(bands.at(-1)?.[1]).toBe(T);
    for (let i = 1; i < bands.length; i++) expect(bands[i]![0]).toBe(bands[i - 1]![1]);
    for (const [first, end] of bands) expect(end).toBeGreaterThan(first);
    expect(bands.length).toBeLessThanOrEqual(64);
    if (bands.length > 2) {
      // Rows first..end−1 of a causal matrix hold (end² − first²)/2 cells, about: within 2× of the mean but the last band.
      const cells = bands.map(([a, b]) => (b * (b + 1) - a * (a + 1)) / 2);
      const mean = (T * (T + 1)) / 2 / bands.length;
      for (const c of cells.slice(0, -1)) expect(c).toBeLessThan(2 * mean);
    }
  });

  it('one band for small work, many for large', () => {
    expect(rowBands(19, 100)).toEqual([[0, 19]]);
    expect(rowBands(2000, 8e9).length).toBe(64);
  });
});

describe('knockout per position', () => {
  const r = { token: 2, klByPosition: [0.5, 0.01, 0.75, 0.2] };
  it('curve over the prompt (NaN before the token), peak, CSV', () => {
    expect(Array.from(klCurve(r, 6))).toEqual([NaN, NaN, 0.5, 0.01, 0.75, 0.2]);
    expect(klPeak(r)).toEqual({ position: 4, kl: 0.75 });
    expect(klPeak({ token: 0, klByPosition: [] })).toBeNull();
    const cols = klPositionColumns(r, ['a', 'b', 'c', 'd', 'e', 'f']);
    expect(cols.map((c) => Array.from(c.values))).toEqual([
      [2, 3, 4, 5],
      ['c', 'd', 'e', 'f'],
      [0.5, 0.01, 0.75, 0.2],
    ]);
  });
});

describe('cancellation', () => {
  it('is told from failure by its message, as it crosses the worker', () => {
    const controller = new AbortController();
    expect(() => throwIfCancelled(controller.signal)).not.toThrow();
    controller.abort();
    expect(() => throwIfCancelled(controller.signal)).toThrow(CancelledError);
    expect(isCancelled(new CancelledError())).toBe(true);
    expect(isCancelled(new Error(CANCELLED_MESSAGE))).toBe(true);
    expect(isCancelled(new Error('The GPU device was lost'))).toBe(false);
    expect(progressText({ done: 40, total: 300, unit: 'tokens' })).toBe('40 of 300 tokens (13%)');
  });
});
