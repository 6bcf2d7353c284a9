/**
 * The compare panel's legend (which colour is which prompt, what the marks under the chart are)
 * and its alignment strip: the two prompts' tokens as a diff (app/analysis/align.ts) — same
 * tokens once, a replaced token as A's struck out then B's, a deleted token (only in A) struck out
 * in A's colour, an inserted one (only in B) in B's — with long same stretches folded
 * (compare-view.ts). A column is a button: clicking it (or Enter / Space) moves the readout there.
 */
import { ALIGN_DELETED, ALIGN_INSERTED, ALIGN_REPLACED, ALIGN_KINDS, type TokenAlignment } from '../../../app/analysis/align';
import { alignmentRuns } from './compare-view';

export const COMPARE_COLOURS = { a: '#4fc3f7', b: '#ff8a65', replaced: '#ffd54f' } as const;

const swatch = (colour: string, shape: 'line' | 'box', thickness = 3) => (
  <span aria-hidden="true" style={{ display: 'inline-block', width: shape === 'line' ? 18 : 8, height: shape === 'line' ? thickness : 8, background: colour, verticalAlign: 'middle', marginRight: 4 }} />
);

/** One prompt in the legend: where it came from, and optionally its line and its start. */
export interface LegendPrompt {
  label: string;
  /** e.g. 'wide line, 12 tokens' — shown after the label in parentheses. */
  detail?: string;
  /** The start of the prompt, quoted after the rest. */
  quote?: string;
}

/** Which colour is which prompt, for the chart and the strip (A's line drawn wide, B's thin). */
export function CompareLegend({ a, b }: { a: LegendPrompt; b: LegendPrompt }) {
  const entry = (name: 'A' | 'B', colour: string, prompt: LegendPrompt) => (
    <span data-prompt={name} data-colour={colour}>
      {swatch(colour, 'line', name === 'A' ? 4 : 2)}
      {name}: {prompt.label}
      {prompt.detail ? ` (${prompt.detail})` : ''}
      {prompt.quote !== undefined ? `: “${prompt.quote}”` : ''}
    </span>
  );
  return (
    <div className="compare-legend" data-testid="compare-legend" style={{ display: 'flex', flexWrap: 'wrap', gap: '4px 14px', fontSize: 12 }}>
      {entry('A', COMPARE_COLOURS.a, a)}
      {entry('B', COMPARE_COLOURS.b, b)}
      <span className="muted">bars: B − A (orange: B larger, blue: A larger)</span>
      <span>
        {swatch(COMPARE_COLOURS.replaced, 'box')}replaced
      </span>
      <span>
        {swatch(COMPARE_COLOURS.a, 'box')}deleted (only in A)
      </span>
      <span>
        {swatch(COMPARE_COLOURS.b, 'box')}inserted (only in B)
      </span>
    </div>
  );
}

const shownText = (text: string | undefined) => (text ?? '').replace(/\n/g, '↵') || '·';

export function AlignmentStrip({
  alignment,
  textsA,
  textsB,
  cursor,
  onSelect,
}: {
  alignment: TokenAlignment;
  textsA: readonly string[];
  textsB: readonly string[];
  cursor: number | null;
  onSelect: (column: number) => void;
}) {
  const runs = alignmentRuns(alignment.kind);
  const cell = (t: number) => {
    const kind = alignment.kind[t] as number;
    const a = shownText(textsA[alignment.a[t] as number]);
    const b = shownText(textsB[alignment.b[t] as number]);
    const name = ALIGN_KINDS[kind] as string;
    const label =
      kind === ALIGN_REPLACED ? `column ${t}: A “${a}” replaced by B “${b}”` : kind === ALIGN_DELETED ? `column ${t}: A “${a}” deleted (only in A)` : kind === ALIGN_INSERTED ? `column ${t}: B “${b}” inserted (only in B)` : `column ${t}: “${a}” in both`;
    return (
      <button
        key={t}
        type="button"
        className={`compare-cell compare-${name}`}
        data-column={t}
        data-kind={name}
        aria-label={label}
        aria-pressed={cursor === t}
        onClick={() => onSelect(t)}
        style={{
          font: 'inherit',
          padding: '0 2px',
          margin: 0,
          border: cursor === t ? '1px solid #fff' : '1px solid transparent',
          borderRadius: 2,
          background: kind === ALIGN_REPLACED ? 'rgba(255, 213, 79, 0.15)' : 'transparent',
          color: 'inherit',
          cursor: 'pointer',
          whiteSpace: 'pre',
        }}
      >
        {kind === ALIGN_INSERTED ? null : <span style={kind === 0 ? undefined : { color: COMPARE_COLOURS.a, textDecoration: 'line-through' }}>{a}</span>}
        {kind === ALIGN_REPLACED || kind === ALIGN_INSERTED ? <span style={{ color: COMPARE_COLOURS.b, textDecoration: 'underline' }}>{b}</span> : null}
      </button>
    );
  };
  return (
    <div
      data-testid="compare-alignment"
      role="group"
      aria-label={`Alignment of A and B: ${alignment.counts.same} same, ${alignment.counts.replaced} replaced, ${alignment.counts.inserted} inserted, ${alignment.counts.deleted} deleted`}
      style={{ fontFamily: 'ui-monospace, monospace', fontSize: 12, lineHeight: '20px', maxHeight: 120, overflow: 'auto', display: 'flex', flexWrap: 'wrap', alignItems: 'baseline' }}
    >
      {runs.map((run) =>
        run.kind === 'folded' ? (
          <span key={`f${run.from}`} className="muted" data-folded={run.to - run.from} style={{ padding: '0 6px' }}>
            … {run.to - run.from} same …
          </span>
        ) : (
          Array.from({ length: run.to - run.from }, (_, i) => cell(run.from + i))
        ),
      )}
    </div>
  );
}
