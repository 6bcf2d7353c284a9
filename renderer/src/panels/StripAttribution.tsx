/**
 * Token attribution in the token strip: when the attribution panel has a result for the trace on
 * screen (kept in the store), a bar per token of the strip — Δ log p(target) in nats when that
 * token is filtered (SignedBarChart: axes with units; tokens outside the attributed range have no
 * bar) — above the tokens, following the shared hovered token, with a readout line and the
 * exports of the panel (CSV, SVG / PNG figure).
 */
import { useMemo, useRef } from 'react';
import type { AttributionResult } from '../../../app/engine/protocol';
import { useElementSize } from './chart-axes';
import { downloadCsv, toCsv } from './csv';
import { attributionColumns, attributionFigure, stripAttribution } from './attribution-view';
import { LinePublishControls } from './publish-lines-ui';
import { SignedBarChart } from './SignedBarChart';

export interface StripAttributionProps {
  result: AttributionResult;
  targetName: string;
  /** The strip's tokens' texts (the whole trace). */
  texts: readonly string[];
  hover: number | null;
  onHover(token: number | null): void;
}

export function StripAttribution({ result, targetName, texts, hover, onHover }: StripAttributionProps) {
  const box = useRef<HTMLDivElement>(null);
  const measured = useElementSize(box).width;
  const values = useMemo(() => stripAttribution(result, texts.length), [result, texts.length]);
  const v = hover !== null ? values[hover] : undefined;
  return (
    <div ref={box} data-testid="strip-attribution" data-target={result.target} style={{ display: 'flex', flexDirection: 'column', gap: 2, fontSize: 12 }}>
      <SignedBarChart
        testId="strip-attribution-chart"
        label={`Token attribution of “${targetName}” per token; arrow keys move the readout`}
        values={values}
        width={measured > 0 ? measured : 600}
        height={60}
        yLabel="Δ log p (nats)"
        xLabel={`token (filtered: Δ := 0 in layer${result.layers.length === 1 ? '' : 's'} ${result.layers.join(', ')})`}
        colours={{ neg: '#ff8a65', pos: '#4fc3f7' }}
        names={{ neg: 'lowers', pos: 'raises' }}
        hover={hover}
        onHover={onHover}
      />
      <div className="actions" style={{ flexWrap: 'wrap' }}>
        <span data-testid="strip-attribution-readout" data-token={hover ?? ''} data-value={v === undefined ? '' : String(v)} aria-live="polite">
          {v !== undefined && Number.isFinite(v)
            ? `token ${hover} “${texts[hover as number] ?? ''}” filtered: log p(“${targetName}”) ${v >= 0 ? '+' : ''}${v.toPrecision(3)} nats`
            : `Attribution of “${targetName}” (tokens ${result.from} … ${result.to - 1}): hover a token or a bar.`}
        </span>
        <button type="button" onClick={() => downloadCsv(toCsv(attributionColumns(result, texts)), `token-attribution-target${result.target}.csv`)}>
          Export token attribution CSV
        </button>
        <LinePublishControls label="token attribution" name={`token-attribution-target${result.target}`} build={() => attributionFigure(result, targetName)} />
      </div>
    </div>
  );
}
