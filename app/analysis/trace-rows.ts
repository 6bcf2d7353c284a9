/**
 * Rows of a trace: what a trace result says of rows read from a TraceRecorder (`traceRowsOf`, the
 * same for a prompt's trace and a live one), and a trace growing as tokens stream — the rows of a
 * 'trace-rows' event appended to the trace so far (`appendTraceRows`, a new trace when they start
 * at row 0). The renderer's store and the live trace both append with it.
 */
import type { LanguageModel } from '../model/model.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { SelectionSummary, TraceWindow } from './recorder.js';
import { traceLayout } from '../arch/registry.js';
import { readableToken } from './token-text.js';
import type { TraceResult, TraceRows } from './types.js';

/** Whose trace rows are: the trace's id, the model's id, config and tokenizer. */
export interface TraceOwner {
  traceId: string;
  modelId: string;
  config: LanguageModel['config'];
  tokenizer: Tokenizer | null;
}

/** What a trace result says of rows `ids` of a trace (all but A), from a recorder's window and its summaries. */
export function traceRowsOf(
  owner: TraceOwner,
  ids: number[],
  layers: readonly number[],
  window: TraceWindow,
  summary: SelectionSummary & { focusScore?: Float32Array[] },
  topNext: TraceResult['topNext'],
): Omit<TraceResult, 'A'> {
  const { config } = owner;
  const { deltaWidth, deltaUnit, nGroups, aStates } = traceLayout(config);
  return {
    traceId: owner.traceId,
    modelId: owner.modelId,
    architecture: config.architecture,
    ids,
    tokens: ids.map((id) => readableToken(owner.tokenizer, id)),
    layers: [...layers],
    deltaWidth,
    deltaUnit,
    delta: window.delta,
    deltaNorm: summary.deltaNorm,
    writeGate: summary.writeGate,
    dState: config.dState,
    nGroups,
    B: window.B,
    C: window.C,
    aStates,
    stateNorm: summary.stateNorm ?? [],
    ...(summary.stateNormByHead ? { stateNormByHead: summary.stateNormByHead } : {}),
    ...(summary.focusScore ? { focusScore: summary.focusScore } : {}),
    topNext,
  };
}

function concat<T extends Float32Array | Int32Array>(a: T, b: T): T {
  const out = new (a.constructor as new (n: number) => T)(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const perLayer = <T extends Float32Array>(a: readonly T[], b: readonly T[]) => a.map((x, i) => concat(x, b[i] as T));

/** The trace so far with `rows` appended (pure). */
export function appendTraceRows(current: TraceResult | null, rows: TraceRows): TraceResult {
  const { from, A, ...rest } = rows;
  if (from === 0) {
    if (!A) throw new RangeError('appendTraceRows: the first rows of a trace carry A');
    return { ...rest, A };
  }
  if (!current) throw new RangeError(`appendTraceRows: rows from ${from} but there is no trace to append to`);
  if (current.ids.length !== from) throw new RangeError(`appendTraceRows: rows from ${from} do not follow the ${current.ids.length} rows so far`);
  if (current.traceId !== rows.traceId || current.modelId !== rows.modelId || current.layers.join() !== rows.layers.join() || current.topNext.k !== rows.topNext.k) {
    throw new RangeError('appendTraceRows: the rows belong to another trace (trace id, model, layers or k differ)');
  }
  return {
    ...current,
    ids: [...current.ids, ...rows.ids],
    tokens: [...current.tokens, ...rows.tokens],
    delta: perLayer(current.delta, rows.delta),
    deltaNorm: perLayer(current.deltaNorm, rows.deltaNorm),
    writeGate: perLayer(current.writeGate, rows.writeGate),
    B: perLayer(current.B, rows.B),
    C: perLayer(current.C, rows.C),
    stateNorm: perLayer(current.stateNorm, rows.stateNorm),
    ...(current.stateNormByHead && rows.stateNormByHead ? { stateNormByHead: perLayer(current.stateNormByHead, rows.stateNormByHead) } : {}),
    ...(current.focusScore && rows.focusScore ? { focusScore: perLayer(current.focusScore, rows.focusScore) } : {}),
    topNext: { k: current.topNext.k, ids: concat(current.topNext.ids, rows.topNext.ids), probs: concat(current.topNext.probs, rows.topNext.probs) },
  };
}
