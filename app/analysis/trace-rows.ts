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

/** Throws unless `rows` can follow `current` (`length` rows so far): the checks of appendTraceRows and TraceRowsBuilder. */
function checkFollows(current: Pick<TraceResult, 'traceId' | 'modelId' | 'layers' | 'topNext'> | null, length: number, rows: TraceRows): void {
  const { from } = rows;
  if (from === 0) {
    if (!rows.A) throw new RangeError('appendTraceRows: the first rows of a trace carry A');
    return;
  }
  if (!current) throw new RangeError(`appendTraceRows: rows from ${from} but there is no trace to append to`);
  if (length !== from) throw new RangeError(`appendTraceRows: rows from ${from} do not follow the ${length} rows so far`);
  if (current.traceId !== rows.traceId || current.modelId !== rows.modelId || current.layers.join() !== rows.layers.join() || current.topNext.k !== rows.topNext.k) {
    throw new RangeError('appendTraceRows: the rows belong to another trace (trace id, model, layers or k differ)');
  }
}

/** The trace so far with `rows` appended (pure). */
export function appendTraceRows(current: TraceResult | null, rows: TraceRows): TraceResult {
  checkFollows(current, current?.ids.length ?? 0, rows);
  const { from, A, ...rest } = rows;
  if (from === 0) return { ...rest, A: A as Float32Array[] };
  if (!current) throw new RangeError('unreachable');
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

/** Joins arrays of one typed-array type into one. */
function join<T extends Float32Array | Int32Array>(parts: readonly T[]): T {
  const first = parts[0] as T;
  if (parts.length === 1) return first;
  const out = new (first.constructor as new (n: number) => T)(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * A trace growing as rows stream, for the side that only reads it at the end (the engine's live
 * trace): the rows are kept as they come (the same checks as appendTraceRows) and joined once by
 * `result`, where appendTraceRows copies the whole trace at every append (a long generation's
 * streamings would copy O(T²) bytes).
 */
export class TraceRowsBuilder {
  private parts: TraceRows[] = [];
  private length = 0;

  append(rows: TraceRows): void {
    checkFollows(rows.from === 0 ? null : (this.parts[0] ?? null), this.length, rows);
    if (rows.from === 0) this.parts = [];
    this.parts.push(rows);
    this.length = rows.from + rows.ids.length;
  }

  /** The trace of every row appended (equal to appending them one by one with appendTraceRows), or null when none was. */
  result(): TraceResult | null {
    const [head] = this.parts;
    if (!head) return null;
    const parts = this.parts;
    const layers = <T extends Float32Array>(of: (r: TraceRows) => readonly T[] | undefined): T[] => (of(head) as readonly T[]).map((_, i) => join(parts.map((r) => (of(r) as readonly T[])[i] as T)));
    const { from: _from, A, ...rest } = head;
    return {
      ...rest,
      A: A as Float32Array[],
      ids: parts.flatMap((r) => r.ids),
      tokens: parts.flatMap((r) => r.tokens),
      delta: layers((r) => r.delta),
      deltaNorm: layers((r) => r.deltaNorm),
      writeGate: layers((r) => r.writeGate),
      B: layers((r) => r.B),
      C: layers((r) => r.C),
      stateNorm: layers((r) => r.stateNorm),
      ...(parts.every((r) => r.stateNormByHead) ? { stateNormByHead: layers((r) => r.stateNormByHead) } : {}),
      ...(parts.every((r) => r.focusScore) ? { focusScore: layers((r) => r.focusScore) } : {}),
      topNext: { k: head.topNext.k, ids: join(parts.map((r) => r.topNext.ids)), probs: join(parts.map((r) => r.topNext.probs)) },
    };
  }
}
