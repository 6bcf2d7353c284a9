/**
 * What a shown trace's view is picked with, shared by the live trace (SelectionPanels) and a trace
 * opened from a file (components/OpenedTrace.tsx): the layer (studio.json's focus layer marked),
 * the score (‖Δ_t‖ or mean Δ over the focus channels, when the model names any), and the trace's
 * size. Both write to the store's trace slice.
 */
import type { TraceResult } from '../../../app/engine/protocol';
import { useStudio, type TraceScoreMode } from '../store';

/** The trace's layer selector (the store's selected layer; the focus layer marked), under an accessible name. */
export function LayerSelect({ layers, layerIndex, focusLayer, label }: { layers: readonly number[]; layerIndex: number; focusLayer?: number | undefined; label: string }) {
  return (
    <label className="setting">
      <span>Layer</span>
      <select aria-label={label} value={layerIndex} onChange={(e) => useStudio.getState().setTraceLayer(Number(e.target.value))}>
        {layers.map((l, i) => (
          <option key={l} value={i}>
            {`layer ${l}${l === focusLayer ? ' (focus)' : ''}`}
          </option>
        ))}
      </select>
    </label>
  );
}

export function TraceViewControls({ result, layerIndex, focusLayer, scoreKind, hasFocusChannels }: { result: TraceResult; layerIndex: number; focusLayer?: number; scoreKind: TraceScoreMode; hasFocusChannels: boolean }) {
  return (
    <>
      <LayerSelect layers={result.layers} layerIndex={layerIndex} focusLayer={focusLayer} label="Layer" />
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
      </span>
    </>
  );
}
