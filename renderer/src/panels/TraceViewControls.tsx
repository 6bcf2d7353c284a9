/**
 * What a shown trace's view is picked with, shared by the live trace (SelectionPanels) and a trace
 * opened from a file (components/OpenedTrace.tsx): the layer (studio.json's focus layer marked),
 * the score (‖Δ_t‖ or mean Δ over the focus channels, when the model names any), and the trace's
 * size. Both write to the store's trace slice. Given a hybrid's blocks (LoadedModelInfo.blocks),
 * the selector lists every block by kind ("layer 1 · attention"): the traced SSM layers are
 * selectable, the others are named (their patterns are in hidden attention and knockout).
 */
import type { TraceResult } from '../../../app/engine/protocol';
import { useStudio, type TraceScoreMode } from '../store';
import { blockCounts, blockLabel, isHybrid, type Blocks } from './blocks';

/** The trace's layer selector (the store's selected layer; the focus layer marked), under an accessible name. */
export function LayerSelect({ layers, layerIndex, focusLayer, label, blocks }: { layers: readonly number[]; layerIndex: number; focusLayer?: number | undefined; label: string; blocks?: Blocks | undefined }) {
  // A hybrid: every block in order, the untraced ones (attention, MLP) disabled, valued apart from the traced layers' indices.
  const all = isHybrid(blocks) && blocks ? blocks.map((_, l) => l) : layers;
  return (
    <label className="setting">
      <span>Layer</span>
      <select aria-label={label} value={layerIndex} onChange={(e) => useStudio.getState().setTraceLayer(Number(e.target.value))}>
        {all.map((l) => {
          const i = layers.indexOf(l);
          return (
            <option key={l} value={i >= 0 ? i : `block-${l}`} disabled={i < 0}>
              {`${blockLabel(blocks, l)}${l === focusLayer ? ' (focus)' : ''}${i < 0 ? ' (no Δ, B, C)' : ''}`}
            </option>
          );
        })}
      </select>
    </label>
  );
}

export function TraceViewControls({ result, layerIndex, focusLayer, scoreKind, hasFocusChannels, blocks }: { result: TraceResult; layerIndex: number; focusLayer?: number; scoreKind: TraceScoreMode; hasFocusChannels: boolean; blocks?: Blocks | undefined }) {
  return (
    <>
      <LayerSelect layers={result.layers} layerIndex={layerIndex} focusLayer={focusLayer} label="Layer" blocks={blocks} />
      <label className="setting">
        <span>Score</span>
        <select aria-label="Score" value={scoreKind} onChange={(e) => useStudio.getState().setTraceScoreMode(e.target.value as TraceScoreMode)}>
          <option value="norm">‖Δ_t‖ (all channels)</option>
          <option value="focus" disabled={!hasFocusChannels}>
            mean Δ over focus channels
          </option>
        </select>
      </label>
      <span className="load-text" data-testid="trace-stats">
        {result.ids.length} tokens · {result.layers.length} layers · {result.deltaUnit === 'head' ? `${result.deltaWidth} heads` : `d_inner ${result.deltaWidth}`}
        {isHybrid(blocks) && blocks ? ` · ${blocks.length} blocks: ${blockCounts(blocks)}` : ''}
      </span>
    </>
  );
}
