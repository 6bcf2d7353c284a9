/**
 * Logit lens: the engine runs the trace's tokens again and applies the model's final norm and LM
 * head to the residual stream after each block (app/analysis/logit-lens.ts). A grid of layers
 * (rows, the selected layer outlined; a click on a row header selects it) × positions (columns):
 * each cell shows the layer's most likely next token and is coloured by the probability it gives
 * the target — the final layer's prediction at that position, or one chosen token id. Hover or
 * the keyboard (arrows on the focused grid) reads out a cell's top k and the target's rank; the
 * hovered position is shared with the other panels. CSV of every cell; SVG / PNG heatmap figure.
 */
import { AnalysisSection, Controls } from './analysis-section';
import { useMemo, useState, type KeyboardEvent } from 'react';
import type { LogitLensResult } from '../../../app/engine/protocol';
import type { OfTrace, TraceAnalysisProps } from './analysis-panel';
import { selectTraceHoverToken, useStudio } from '../store';
import { colormapCss } from './colormaps';
import { downloadCsv, toCsv } from './csv';
import { lensCell, lensColumns, lensFigure, lensText } from './logit-lens-view';
import { PanelStatus } from './PanelStatus';
import { parseRange, TokenRangeInputs, useTokenRange } from './token-range';
import { parseTarget, TargetInput } from './target-input';
import { PublishControls } from './publish-ui';
import { Stale, useLongWork, WorkProgressBar } from './LongWork';
import { blockLabel } from './blocks';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
const setHover = (token: number | null) => useStudio.getState().setTraceHoverToken(token);
/** Text on a cell: dark on the light end of viridis. */
const ink = (p: number) => (p > 0.6 ? '#111' : '#eee');

type Done = OfTrace<LogitLensResult>;

export function LogitLensPanel({ modelId, engine, trace, layerIndex, texts, labels, blocks }: TraceAnalysisProps) {
  const T = trace.ids.length;
  // The positions shown (default: the last 16 of the trace on screen).
  const range = useTokenRange(trace.traceId, { from: Math.max(0, T - 16), to: T });
  const [targetText, setTarget] = useState('');
  const [done, setDone] = useState<Done | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [cursor, setCursor] = useState<{ layer: number; column: number } | null>(null);
  const work = useLongWork(engine);
  const hover = useStudio(selectTraceHoverToken);
  const shown = done && done.trace === trace ? done.result : null;
  const n = shown ? shown.to - shown.from : 0;
  const L = shown?.layers.length ?? 0;
  const readout = useMemo(() => (shown && cursor ? lensCell(shown, cursor.layer, cursor.column, labels) : null), [shown, cursor, labels]);

  const run = () => {
    if (work.running) return;
    const positions = parseRange(range.fromText, range.toText, T, 'Positions');
    if ('error' in positions) {
      setError(positions.error);
      return;
    }
    const { from, to } = positions;
    const parsed = parseTarget(targetText, labels);
    if ('error' in parsed) {
      setError(parsed.error);
      return;
    }
    const target = parsed.id ?? 'final';
    setError(null);
    const onScreen = trace;
    work.run('logitLens', { modelId, traceId: onScreen.traceId, from, to, target, k: 5 }).then(
      (result) => {
        if (result) {
          setDone({ trace: onScreen, result });
          setCursor(null);
        }
      },
      (e: unknown) => setError(`Logit lens failed: ${message(e)}`),
    );
  };

  const move = (e: KeyboardEvent) => {
    if (!shown) return;
    const d: Record<string, [number, number]> = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    const step = d[e.key];
    if (e.key === 'Escape') {
      setCursor(null);
      setHover(null);
      return;
    }
    if (!step) return;
    e.preventDefault();
    const at = cursor ?? { layer: 0, column: 0 };
    const next = { layer: Math.min(L - 1, Math.max(0, at.layer + (cursor ? step[0] : 0))), column: Math.min(n - 1, Math.max(0, at.column + (cursor ? step[1] : 0))) };
    setCursor(next);
    setHover(shown.from + next.column);
  };

  return (
    <AnalysisSection label="Logit lens" testId="logit-lens-panel" busy={work.running} title={<>Logit lens: the next token each layer’s residual stream predicts (final norm + LM head)</>}>
      <Controls>
        <TokenRangeInputs label="Logit lens" what="Positions" title="The positions whose next-token predictions are read (at most 256)" tokens={T} range={range} />
        <TargetInput label="Logit lens target" placeholder="final prediction" title="Empty: at each position, the final layer’s most likely token. Or a token id (or label) ranked everywhere." value={targetText} onChange={setTarget} onEnter={run} />
        <button type="button" className="primary" onClick={run} disabled={work.running}>
          Run the logit lens
        </button>
        <button type="button" disabled={!shown} onClick={() => shown && downloadCsv(toCsv(lensColumns(shown, labels)), `logit-lens-${shown.from}-${shown.to}.csv`)}>
          Export logit lens CSV
        </button>
        <PublishControls label="logit lens" name={`logit-lens-${shown?.from ?? 0}-${shown?.to ?? 0}`} build={() => (shown ? lensFigure(shown, texts, blocks) : null)} />
      </Controls>
      {work.running && <WorkProgressBar label={`Logit lens over ${T} tokens`} progress={work.progress} onCancel={work.cancel} testId="logit-lens" />}
      <PanelStatus busy={null} error={error} testId="logit-lens" />
      {shown && (
        <Stale stale={work.running} testId="logit-lens-result" style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
          <div className="muted">
            Rows: layer l = residual stream after block l (the last row is the model’s output). Cell: the layer’s top next token; colour: probability of the target ({shown.target === 'final' ? 'the final prediction at that position' : `“${lensText(shown, shown.target, labels)}” (${shown.target})`}), 0{' '}
            <span style={{ background: 'linear-gradient(90deg,' + [0, 0.25, 0.5, 0.75, 1].map((t) => colormapCss('viridis', t)).join(',') + ')', display: 'inline-block', width: 80, height: 8 }} /> 1
          </div>
          <div style={{ overflowX: 'auto' }}>
            <table
              className="lens-grid"
              data-testid="logit-lens-grid"
              data-from={shown.from}
              data-to={shown.to}
              tabIndex={0}
              aria-label="Logit lens grid: layers by positions; arrow keys move the readout"
              onKeyDown={move}
              onPointerLeave={() => setHover(null)}
              style={{ borderCollapse: 'collapse', fontSize: 11 }}
            >
              <thead>
                <tr>
                  <th scope="col" style={{ textAlign: 'left' }}>
                    layer \ position
                  </th>
                  {Array.from({ length: n }, (_, p) => (
                    <th key={p} scope="col" data-position={shown.from + p} style={{ padding: '0 3px', outline: hover === shown.from + p ? '1px solid #fff' : undefined }} title={`position ${shown.from + p}: “${texts[shown.from + p] ?? ''}”`}>
                      {shown.from + p}
                      <br />
                      <span className="muted">{texts[shown.from + p] ?? ''}</span>
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {shown.layers.map((layer, l) => (
                  <tr key={layer} data-layer={layer} style={{ outline: trace.layers[layerIndex] === layer ? '1px solid #ffb000' : undefined }}>
                    <th
                      scope="row"
                      style={{ textAlign: 'left', cursor: 'pointer' }}
                      title="Select this layer in the other panels"
                      onClick={() => {
                        const i = trace.layers.indexOf(layer);
                        if (i >= 0) useStudio.getState().setTraceLayer(i);
                      }}
                    >
                      {blockLabel(blocks, layer)}
                    </th>
                    {Array.from({ length: n }, (_, p) => {
                      const c = l * n + p;
                      const prob = shown.targetProb[c] as number;
                      const top = shown.topIds[c * shown.k] as number;
                      const active = cursor?.layer === l && cursor.column === p;
                      return (
                        <td
                          key={p}
                          data-top={top}
                          data-rank={shown.targetRank[c]}
                          data-prob={prob}
                          onPointerEnter={() => {
                            setCursor({ layer: l, column: p });
                            setHover(shown.from + p);
                          }}
                          style={{ background: colormapCss('viridis', Math.min(1, Math.max(0, prob))), color: ink(prob), padding: '1px 3px', textAlign: 'center', outline: active ? '2px solid #fff' : undefined }}
                        >
                          {lensText(shown, top, labels)}
                        </td>
                      );
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div data-testid="logit-lens-readout" aria-live="polite" style={{ minHeight: 16 }}>
            {readout
              ? `${blockLabel(blocks, readout.layer)}, after position ${readout.position} “${texts[readout.position] ?? ''}”: ${readout.top.map((t) => `“${t.text}” ${t.prob.toFixed(3)}`).join(' · ')} — target “${readout.target.text}” rank ${readout.target.rank + 1}, p ${readout.target.prob.toPrecision(3)}`
              : 'Point at a cell, or focus the grid and use the arrow keys.'}
          </div>
        </Stale>
      )}
    </AnalysisSection>
  );
}
