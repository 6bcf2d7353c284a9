/**
 * What the panels that re-run a trace's tokens in the engine (logit lens, attribution) are given,
 * and the result they keep: with the trace it is of, so that a new trace on screen hides it.
 */
import type { TraceResult } from '../../../app/engine/protocol';
import type { EngineClient } from '../engine-client';
import type { Blocks } from './blocks';

export interface TraceAnalysisProps {
  modelId: string;
  engine: EngineClient;
  trace: TraceResult;
  /** The selected layer, an index into trace.layers. */
  layerIndex: number;
  /** Readable text of every token of the trace. */
  texts: readonly string[];
  /** The model's token labels (studio.json), shown instead of the engine's texts. */
  labels?: readonly string[] | undefined;
  /** The model's blocks (LoadedModelInfo.blocks): a hybrid's layers are named by kind. */
  blocks?: Blocks | undefined;
}

/** A finished result and the trace it was computed for. */
export interface OfTrace<R> {
  trace: TraceResult;
  result: R;
}
