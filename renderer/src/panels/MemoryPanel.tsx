/**
 * Memory: for a chosen token j (clicked in the token strip, or typed), how much of what it wrote
 * survives at each later token i in the selected layer — retention, the mean over (d, n) of
 * exp(A[d, n]·(S_i[d] − S_j[d])) with S the prefix sum of Δ — and its half-life (the first i
 * where retention ≤ ½, or "beyond the sequence"); below, ‖state_t‖ per layer. Exports: CSV of
 * both curves; NPY of the retention [T] (NaN before token j) and of ‖state_t‖ [layers, T].
 * A hybrid (issue 22) adds one sequence's memory against its context length: the attention
 * blocks' KV caches grow by LoadedModelInfo.kvCache.bytesPerToken a token up to their capacity,
 * beside the SSM blocks' state, the same at every length (blocks.ts memoryGrowth); the traced
 * prompt's length marked; hover readout, CSV and figure exports.
 */
import { useMemo, useState } from 'react';
import type { LoadedModelInfo } from '../../../app/engine/protocol';
import { memoryGrowth } from './blocks';
import { windowSuffix, type TraceView } from './long-trace';
import { selectTraceHoverToken, selectTraceMemoryToken, useStudio } from '../store';
import { downloadCsv, downloadNpy, toCsv, type CsvColumn } from './csv';
import { LineChart } from './LineChart';
import { halfLife, retention } from './memory';

const LAYER_COLOURS = ['#4fc3f7', '#ff8a65', '#aed581', '#ba68c8', '#ffd54f', '#4db6ac', '#f06292', '#90a4ae'];

/** The CSV behind the panel: per token, the retention of j in the selected layer and ‖state_t‖ per layer. */
export function memoryColumns(trace: TraceView, curve: ArrayLike<number>, texts: readonly string[]): CsvColumn[] {
  const T = trace.ids.length;
  return [
    { name: 'token', values: Array.from({ length: T }, (_, t) => (trace.tokenOffset ?? 0) + t) },
    { name: 'id', values: trace.ids },
    { name: 'text', values: texts },
    { name: 'retention', values: curve },
    ...trace.layers.map((l, i) => ({ name: `|state| L${l}`, values: trace.stateNorm[i] ?? new Float32Array(T).fill(NaN) })),
  ];
}

/** ‖state_t‖ of every traced layer as one [layers, T] row-major matrix (NaN where a layer has none). */
export function stateNormMatrix(trace: TraceView): Float32Array {
  const T = trace.ids.length;
  const out = new Float32Array(trace.layers.length * T).fill(NaN);
  trace.layers.forEach((_, i) => {
    const norms = trace.stateNorm[i];
    if (norms) out.set(norms.subarray(0, T), i * T);
  });
  return out;
}

const setHover = (token: number | null) => useStudio.getState().setTraceHoverToken(token);

const KV_COLOUR = '#ff8a65';
const SSM_COLOUR = '#4fc3f7';

/** A hybrid's memory against context length: KV caches (growing) beside the SSM state (constant). */
function KvGrowth({ kvCache, ssmStateBytes, tokens }: { kvCache: NonNullable<LoadedModelInfo['kvCache']>; ssmStateBytes: number; tokens: number }) {
  const growth = useMemo(() => memoryGrowth(kvCache, ssmStateBytes), [kvCache, ssmStateBytes]);
  const [hover, setHover] = useState<number | null>(null);
  const u = growth.unit.name;
  const at = hover !== null ? { tokens: growth.tokens[hover] as number, kv: growth.kv[hover] as number, ssm: growth.ssm[hover] as number } : null;
  const fmt = (v: number) => v.toPrecision(4);
  // The traced prompt's length, as a point index of the chart.
  const marker = Math.min(tokens, kvCache.capacity) / growth.step;
  return (
    <div data-testid="kv-growth" data-capacity={kvCache.capacity} data-bytes-per-token={kvCache.bytesPerToken} data-fixed-bytes={kvCache.fixedBytes} data-ssm-bytes={ssmStateBytes} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
      <div className="muted" style={{ fontSize: 12 }}>
        One sequence’s memory against its context: the attention blocks’ KV caches grow by {kvCache.bytesPerToken.toLocaleString('en-US')} bytes a token (up to {kvCache.capacity.toLocaleString('en-US')} tokens), the SSM state stays {ssmStateBytes.toLocaleString('en-US')} bytes
      </div>
      <LineChart
        label="KV cache and SSM state against context length"
        testId="kv-growth-chart"
        xLabel="context (tokens)"
        yLabel={`memory (${u})`}
        xStep={growth.step}
        series={[
          { name: `KV caches in use (${u})`, values: growth.kv, colour: KV_COLOUR },
          { name: `SSM state (${u}, constant)`, values: growth.ssm, colour: SSM_COLOUR },
        ]}
        yRange={{ min: 0, max: Math.max(...growth.kv, ...growth.ssm) }}
        marker={marker}
        hover={hover}
        onHover={setHover}
        figure={{ label: 'KV cache vs context', name: 'kv-cache-vs-context' }}
      />
      <div data-testid="kv-growth-readout" aria-live="polite" style={{ fontSize: 12, minHeight: 18, fontFamily: 'ui-monospace, monospace' }}>
        {at ? (
          <span data-tokens={at.tokens} data-kv={String(at.kv * growth.unit.bytes)} data-ssm={String(at.ssm * growth.unit.bytes)}>
            at {Math.round(at.tokens).toLocaleString('en-US')} tokens: KV caches {fmt(at.kv)} {u} · SSM state {fmt(at.ssm)} {u}
          </span>
        ) : (
          <span className="muted">Hover the chart for the bytes at a context length (the orange line: the traced prompt’s {tokens} tokens).</span>
        )}
      </div>
      <div className="actions" style={{ fontSize: 12 }}>
        <button
          type="button"
          onClick={() =>
            downloadCsv(
              toCsv([
                { name: 'tokens', values: growth.tokens },
                { name: 'kv_cache_bytes', values: Array.from(growth.kv, (v) => v * growth.unit.bytes) },
                { name: 'ssm_state_bytes', values: Array.from(growth.ssm, (v) => v * growth.unit.bytes) },
              ]),
              'kv-cache-vs-context.csv',
            )
          }
        >
          Export memory vs context CSV
        </button>
      </div>
    </div>
  );
}

/** `trace`: a trace, or a window of a long one (token i is token tokenOffset + i: the token box, texts, axes and exports say so). */
export function MemoryPanel({
  trace,
  layerIndex,
  texts,
  kvCache = null,
  ssmStateBytes = 0,
}: {
  trace: TraceView;
  layerIndex: number;
  texts: readonly string[];
  /** A hybrid's KV caches (LoadedModelInfo.kvCache) and its SSM state's bytes: the memory-vs-context chart. */
  kvCache?: LoadedModelInfo['kvCache'] | undefined;
  ssmStateBytes?: number;
}) {
  const hover = useStudio(selectTraceHoverToken);
  const T = trace.ids.length;
  const offset = trace.tokenOffset ?? 0;
  const suffix = windowSuffix(trace);
  const layer = trace.layers[layerIndex];
  const chosen = useStudio(selectTraceMemoryToken);
  const j = chosen !== null && chosen < T ? chosen : 0;
  const delta = trace.delta[layerIndex];
  const A = trace.A[layerIndex];
  const curve = useMemo(() => (delta && A ? retention(delta, A, trace.deltaWidth, trace.aStates, j) : new Float64Array(T).fill(NaN)), [delta, A, trace.deltaWidth, trace.aStates, j, T]);
  const half = useMemo(() => halfLife(curve, j), [curve, j]);
  // Mamba-2: one curve per head of the selected layer ([T, H] → H series).
  const perHead = trace.stateNormByHead?.[layerIndex]?.length ? trace.stateNormByHead[layerIndex] : undefined;
  const H = trace.deltaWidth;
  const byHead = useMemo(
    () =>
      perHead
        ? Array.from({ length: H }, (_, h) => ({
            name: `head ${h}`,
            values: Float32Array.from({ length: T }, (_, t) => perHead[t * H + h] as number),
            colour: LAYER_COLOURS[h % LAYER_COLOURS.length] as string,
          }))
        : null,
    [perHead, H, T],
  );
  const last = curve[T - 1] as number;

  return (
    <section aria-label="Memory" data-testid="memory-panel" data-hover-token={hover ?? undefined} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
      <h4 style={{ margin: '8px 0 0' }}>Memory: how long a token survives in the state (layer {layer})</h4>
      <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
        <label className="setting">
          <span>Token j</span>
          <input
            type="number"
            aria-label="Memory token"
            min={offset}
            max={offset + T - 1}
            step={1}
            value={offset + j}
            onChange={(e) => {
              const v = Number(e.target.value) - offset;
              if (Number.isInteger(v) && v >= 0 && v < T) useStudio.getState().setTraceMemoryToken(v);
            }}
            style={{ width: 80 }}
          />
        </label>
        <span className="muted">(or click a token in the strip)</span>
        <button type="button" onClick={() => downloadCsv(toCsv(memoryColumns(trace, curve, texts)), `memory-layer${layer}-token${offset + j}${suffix}.csv`)}>
          Export memory CSV
        </button>
        <button type="button" onClick={() => downloadNpy({ dtype: '<f4', shape: [T], data: curve }, `retention-layer${layer}-token${offset + j}${suffix}.npy`)}>
          Export retention NPY
        </button>
        <button type="button" onClick={() => downloadNpy({ dtype: '<f4', shape: [trace.layers.length, T], data: stateNormMatrix(trace) }, `state-norms${suffix}.npy`)}>
          Export ‖state‖ NPY
        </button>
      </div>
      <div data-testid="memory-half-life" data-token={offset + j} data-half-life={half ? String(half.tokens) : 'beyond'} data-last={String(last)} style={{ fontSize: 12 }}>
        token {offset + j} “{texts[j] ?? ''}”: half-life{' '}
        {half ? `${half.tokens} tokens (retention ≤ 0.5 at token ${offset + half.token})` : `beyond the ${trace.tokenOffset !== undefined ? 'window' : 'sequence'} (retention at the last token ${Number.isFinite(last) ? last.toPrecision(3) : '—'})`}
      </div>
      <LineChart
        label={`Retention of token ${offset + j} at later tokens, layer ${layer}`}
        testId="retention-curve"
        xOffset={offset}
        series={[{ name: `retention of token ${offset + j}`, values: curve, colour: '#ffd54f' }]}
        yRange={{ min: 0, max: 1 }}
        xLabel="token i (position)"
        yLabel="retention (fraction)"
        guides={[0.5]}
        marker={half?.token ?? null}
        figure={{ label: 'retention', name: `retention-layer${layer}-token${offset + j}${suffix}` }}
        hover={hover}
        onHover={setHover}
      />
      <div className="muted" style={{ fontSize: 12 }}>
        ‖state_t‖ per layer
      </div>
      <LineChart
        label="State norm per layer"
        testId="state-norms"
        xOffset={offset}
        xLabel="token (position)"
        yLabel="‖state_t‖ (L2)"
        series={trace.layers.map((l, i) => ({ name: `layer ${l}`, values: trace.stateNorm[i] ?? [], colour: LAYER_COLOURS[i % LAYER_COLOURS.length] as string }))}
        marker={j}
        figure={{ label: '‖state‖ per layer', name: `state-norms${suffix}` }}
        hover={hover}
        onHover={setHover}
      />
      {kvCache && <KvGrowth kvCache={kvCache} ssmStateBytes={ssmStateBytes} tokens={offset + T} />}
      {byHead && (
        <>
          <div className="muted" style={{ fontSize: 12 }}>
            ‖state_t‖ per head, layer {layer} (each head's P × N state)
          </div>
          <LineChart label={`State norm per head, layer ${layer}`} testId="state-norms-by-head" xOffset={offset} xLabel="token (position)" yLabel="‖state_t‖ of the head (L2)" series={byHead} marker={j} hover={hover} onHover={setHover} figure={{ label: '‖state‖ per head', name: `state-norms-by-head-layer${layer}` }} />
        </>
      )}
    </section>
  );
}
