/**
 * The token strip: the traced tokens, each tinted by the selected layer's selection score, with
 * a legend of the three bands (write + reset / in between / filtered) whose thresholds move, the
 * score's definition (‖Δ_t‖ or mean Δ over the model's focus channels), and a hover card (id,
 * text, band, score per layer with a sparkline, the five most likely next tokens after it). Arrow
 * keys, Home and End move the hovered token; the hovered token is shared with the heatmap through
 * the store; a click, or Enter or Space on the hovered token, picks the memory and knockout panels' token. Each token carries its score (data-score)
 * for tests and tools. Export: NPY of the scores [layers, T]. With a token attribution of the trace
 * (the attribution panel's), its bar per token above the tokens (StripAttribution.tsx).
 */
import { useMemo, type KeyboardEvent } from 'react';
import type { AttributionResult, TraceResult } from '../../../app/engine/protocol';
import { StripAttribution } from './StripAttribution';
import { selectTraceHoverToken, selectTraceMemoryToken, selectTraceThresholds, useStudio } from '../store';
import { colormapCss } from './colormaps';
import { downloadNpy } from './csv';
import { BAND_LABELS, bandOf, bands, defaultThresholds, moveThreshold, normalize, stripKeyAction, topNextAt, valueRange, type Band, type Thresholds } from './selection';

const BAND_ORDER: Band[] = ['write', 'between', 'filtered'];
const BAND_MARK: Record<Band, string> = { write: '#ff6b6b', between: '#c9c9c9', filtered: '#3a3f4b' };

const setHover = (token: number | null) => useStudio.getState().setTraceHoverToken(token);

function Sparkline({ values, current }: { values: number[]; current: number }) {
  if (values.length < 2) return null;
  const { min, max } = valueRange(values, false);
  const w = 120;
  const h = 28;
  const x = (i: number) => (i / (values.length - 1)) * (w - 4) + 2;
  const y = (v: number) => h - 2 - normalize(v, { min, max }, false) * (h - 4);
  const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  return (
    <svg width={w} height={h} role="img" aria-label="score per layer" data-testid="token-sparkline">
      <polyline points={points} fill="none" stroke="currentColor" strokeWidth={1.5} />
      <circle cx={x(current)} cy={y(values[current] ?? 0)} r={3} fill="#ffb000" />
    </svg>
  );
}

export interface TokenStripProps {
  ids: readonly number[];
  texts: readonly string[];
  /** The traced layers, and per layer (same order) the score of every token. */
  layers: readonly number[];
  scores: readonly Float32Array[];
  layerIndex: number;
  /** The score's definition, shown in the legend. */
  scoreLabel: string;
  /** The top-k next tokens after each token (the engine's trace), shown in the hover card. */
  topNext?: TraceResult['topNext'];
  /** Display text of any token id (selection.ts tokenNamer). */
  nameOf?: (id: number) => string;
  /** Token i is token tokenOffset + i of the trace (a window of a long trace, long-trace.ts): the card and the export say so. */
  tokenOffset?: number;
  /** A token attribution of this trace (the attribution panel's): its bars above the tokens (StripAttribution). */
  attribution?: { result: AttributionResult; targetName: string } | null;
}

/** The five most likely next tokens after `token`, with their probabilities. */
function NextTokens({ topNext, token, nameOf }: { topNext: TraceResult['topNext']; token: number; nameOf: (id: number) => string }) {
  const top = topNextAt(topNext, token, 5);
  if (top.length === 0) return null;
  return (
    <span data-testid="token-next">
      next:{' '}
      {top.map(({ id, prob }, r) => (
        <span key={r} data-rank={r} data-id={id} data-prob={String(prob)} style={{ marginRight: 6, whiteSpace: 'pre' }}>
          “{nameOf(id)}” {(100 * prob).toFixed(1)}%
        </span>
      ))}
    </span>
  );
}

export function TokenStrip({ ids, texts, layers, scores, layerIndex, scoreLabel, topNext, nameOf = String, tokenOffset, attribution = null }: TokenStripProps) {
  const offset = tokenOffset ?? 0;
  const hover = useStudio(selectTraceHoverToken);
  const picked = useStudio(selectTraceMemoryToken);
  const layerScores = useMemo(() => scores[layerIndex] ?? new Float32Array(ids.length), [scores, layerIndex, ids.length]);
  const range = useMemo(() => valueRange(layerScores, false), [layerScores]);
  // Thresholds start at the terciles and follow the user from there (in the store, so sessions keep
  // them); another layer, score or trace starts over.
  const moved = useStudio(selectTraceThresholds);
  const movedKey = `${layerIndex}|${scoreLabel}`;
  const initial = useMemo(() => defaultThresholds(layerScores), [layerScores]);
  const thresholds: Thresholds = moved?.key === movedKey ? moved : initial;
  const tokenBands = useMemo(() => bands(layerScores, thresholds), [layerScores, thresholds]);
  const counts = useMemo(() => {
    const c: Record<Band, number> = { write: 0, between: 0, filtered: 0 };
    for (const b of tokenBands) c[b]++;
    return c;
  }, [tokenBands]);
  const step = range.max > range.min ? (range.max - range.min) / 200 : 1e-6;

  const onKeyDown = (event: KeyboardEvent) => {
    const action = stripKeyAction(event.key, hover, ids.length);
    if (action === null) return;
    event.preventDefault();
    if ('pick' in action) {
      useStudio.getState().setTraceMemoryToken(action.pick);
      return;
    }
    setHover(action.hover);
    document.getElementById(`token-${action.hover}`)?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  };

  const slider = (which: keyof Thresholds, label: string) => (
    <label className="setting">
      <span>
        {label} {thresholds[which].toPrecision(3)}
      </span>
      <input
        type="range"
        aria-label={`${label} threshold`}
        min={range.min}
        max={range.max}
        step={step}
        value={thresholds[which]}
        onChange={(e) => useStudio.getState().setTraceThresholds({ key: movedKey, ...moveThreshold(thresholds, which, Number(e.target.value)) })}
      />
    </label>
  );

  const hovered = hover !== null && hover < ids.length ? hover : null;
  return (
    <section aria-label="Token strip" data-testid="token-strip">
      <div className="legend" data-testid="strip-legend" style={{ display: 'flex', flexWrap: 'wrap', gap: 12, alignItems: 'flex-end', fontSize: 12 }}>
        <span data-testid="score-definition">
          score: {scoreLabel} (layer {layers[layerIndex]})
        </span>
        {BAND_ORDER.map((b) => (
          <span key={b} data-testid={`band-${b}`}>
            <span style={{ display: 'inline-block', width: 10, height: 10, background: BAND_MARK[b], marginRight: 4 }} />
            {BAND_LABELS[b]}: {counts[b]}
          </span>
        ))}
        {slider('low', 'filtered ≤')}
        {slider('high', 'write ≥')}
        <button
          type="button"
          onClick={() => {
            const T = ids.length;
            const data = new Float32Array(layers.length * T).fill(NaN);
            scores.forEach((s, i) => data.set(s.subarray(0, T), i * T));
            downloadNpy({ dtype: '<f4', shape: [layers.length, T], data }, tokenOffset !== undefined ? `scores-tokens${offset}-${offset + T}.npy` : 'scores.npy');
          }}
        >
          Export scores NPY
        </button>
      </div>
      {attribution && <StripAttribution result={attribution.result} targetName={attribution.targetName} texts={texts} hover={hovered} onHover={setHover} />}
      <div
        className="token-strip"
        role="listbox"
        aria-label="Tokens"
        aria-activedescendant={hovered !== null ? `token-${hovered}` : undefined}
        tabIndex={0}
        onKeyDown={onKeyDown}
        onMouseLeave={() => setHover(null)}
        style={{ display: 'flex', flexWrap: 'wrap', gap: 1, fontFamily: 'ui-monospace, monospace', fontSize: 13, maxHeight: 160, overflowY: 'auto', padding: 4 }}
      >
        {texts.map((text, t) => {
          const score = layerScores[t] ?? 0;
          const tone = normalize(score, range, false);
          return (
            <span
              key={t}
              id={`token-${t}`}
              role="option"
              aria-selected={t === hovered}
              data-band={tokenBands[t]}
              data-score={String(score)}
              data-picked={t === picked ? 'true' : undefined}
              title={t === picked ? 'picked for Memory and Knockout' : undefined}
              onMouseEnter={() => setHover(t)}
              onClick={() => useStudio.getState().setTraceMemoryToken(t)}
              style={{
                background: colormapCss('viridis', tone),
                color: tone > 0.55 ? '#000' : '#fff',
                borderBottom: `3px solid ${BAND_MARK[tokenBands[t] ?? 'between']}`,
                outline: t === hovered ? '2px solid #ffb000' : undefined,
                boxShadow: t === picked ? 'inset 0 0 0 2px #fff' : undefined,
                padding: '0 2px',
                whiteSpace: 'pre',
              }}
            >
              {text}
            </span>
          );
        })}
      </div>
      {/* A fixed height: hovering must not move the panels below (the pointer would land on another cell). */}
      <div className="token-card" data-testid="token-card" aria-live="polite" style={{ height: 64, overflowY: 'auto', fontSize: 12, display: 'flex', flexWrap: 'wrap', columnGap: 12, rowGap: 2, alignItems: 'center', alignContent: 'flex-start' }}>
        {hovered !== null ? (
          <>
            <span>
              token {offset + hovered} · id {ids[hovered]} · “{texts[hovered]}” · {BAND_LABELS[bandOf(layerScores[hovered] ?? 0, thresholds)]}
            </span>
            <span>
              scores by layer:{' '}
              {layers.map((l, i) => `L${l} ${(scores[i]?.[hovered] ?? NaN).toPrecision(3)}`).join(' · ')}
            </span>
            <Sparkline values={scores.map((s) => s[hovered] ?? 0)} current={layerIndex} />
            {topNext && <NextTokens topNext={topNext} token={hovered} nameOf={nameOf} />}
          </>
        ) : (
          <span className="muted">Hover a token (or focus the strip and use the arrow keys); click it, or press Enter or Space, to pick it for Memory and Knockout.</span>
        )}
      </div>
    </section>
  );
}
