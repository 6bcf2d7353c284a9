/**
 * Activation patching (causal tracing): the trace on screen is the clean prompt; a corrupted
 * prompt of the same length is typed here — or, in one click, the Compare panel's last pair is
 * taken (clean = its prompt A, corrupted = B, still editable; back to the trace on screen with a
 * second button). The engine restores one site — each layer's state
 * after each token, or its residual stream or mixer output at each token — from the clean run into
 * the corrupted one (app/analysis/patching.ts) and returns the
 * fraction of the logit difference logit(answer) − logit(foil) after the last token that comes
 * back: a layers × tokens heatmap (diverging map: 1 red = fully restored, 0 white, negative blue),
 * hover or arrow keys (on the focused heatmap) for a cell's numbers, the hovered token shared with
 * the other panels; CSV; SVG / PNG figure.
 */
import { AnalysisSection, Controls } from './analysis-section';
import type { OfTrace, TraceAnalysisProps } from './analysis-panel';
import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent } from 'react';
import type { PatchingResult, TraceResult } from '../../../app/engine/protocol';
import type { PatchSite } from '../../../app/analysis/patching';
import { selectComparePair, useStudio } from '../store';
import { prepareCanvas2d } from './canvas2d';
import { CellOutline, HeatmapAxes, PLOT_CANVAS_STYLE, useElementSize } from './chart-axes';
import { cellAt2d, moveCursor2d } from './chart-scale';
import { colormapCss } from './colormaps';
import { downloadCsv, toCsv } from './csv';
import { Stale, useLongWork, WorkProgressBar } from './LongWork';
import { PanelStatus } from './PanelStatus';
import { parseRange, TokenRangeInputs, useTokenRange } from './token-range';
import { patchColumns, patchFigure, patchRange } from './patching-view';
import { PublishControls } from './publish-ui';
import { parseIds, tokenTexts } from './selection';
import { parseTarget, TargetInput } from './target-input';
import { blockLabel, type Blocks } from './blocks';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
const setHover = (token: number | null) => useStudio.getState().setTraceHoverToken(token);
const SITE_WORDS: Record<PatchSite, string> = { state: 'its layer’s state after its token', residual: 'the residual stream after its layer at its token', mixer: 'its layer’s mixer output at its token' };

export interface PatchingPanelProps extends Omit<TraceAnalysisProps, 'layerIndex'> {
  idsOnly: boolean;
  /** The model's blocks (LoadedModelInfo.blocks): a hybrid's layers are named by kind. */
  blocks?: Blocks | undefined;
}

interface Done extends OfTrace<PatchingResult> {
  /** The clean prompt's token texts (the heatmap's columns). */
  texts: readonly string[];
}

export function PatchingPanel({ modelId, engine, trace, texts, idsOnly, labels, blocks }: PatchingPanelProps) {
  const pair = useStudio(selectComparePair);
  // The clean run: the trace on screen, or Compare's prompt A once "Use the Compare pair" took it (while that trace stays on screen).
  const [cleanFrom, setCleanFrom] = useState<{ onScreen: TraceResult; clean: TraceResult } | null>(null);
  const clean = cleanFrom && cleanFrom.onScreen === trace ? cleanFrom.clean : trace;
  const cleanTexts = useMemo(() => (clean === trace ? texts : tokenTexts(clean, labels)), [clean, trace, texts, labels]);
  const T = clean.ids.length;
  const [typed, setTyped] = useState<string | null>(null);
  // Ids-only models start from the clean prompt's ids (edit one or two); text models from an empty box.
  const corruptText = typed ?? (idsOnly ? clean.ids.join(', ') : '');
  // The patched tokens [from, to) (default: every token).
  const tokenRange = useTokenRange(clean.traceId, { from: 0, to: T });
  /** Clean = Compare's prompt A, corrupted = its prompt B (typed into the box, still editable). */
  const takeComparePair = () => {
    if (!pair) return;
    setCleanFrom(pair.a === trace ? null : { onScreen: trace, clean: pair.a });
    setTyped('ids' in pair.promptB ? pair.promptB.ids.join(', ') : pair.promptB.text);
    setError(null);
  };
  const [site, setSite] = useState<PatchSite>('state');
  const [answerText, setAnswer] = useState('');
  const [foilText, setFoil] = useState('');
  const [done, setDone] = useState<Done | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [cursor, setCursor] = useState<{ token: number; channel: number } | null>(null);
  const work = useLongWork(engine);
  const canvas = useRef<HTMLCanvasElement>(null);
  const size = useElementSize(canvas);
  const shown = done && done.trace === trace ? done.result : null;
  const shownTexts = done?.texts ?? texts;
  const L = shown?.layers.length ?? 0;
  const range = useMemo(() => (shown ? patchRange(shown) : { min: -1, max: 1 }), [shown]);
  const n = shown ? shown.to - shown.from : 0;
  const view = useMemo(() => ({ x: { start: 0, count: Math.max(1, n) }, y: { start: 0, count: Math.max(1, L) } }), [n, L]);
  const name = (id: number) => labels?.[id] ?? (id === shown?.answer ? shown.answerText : id === shown?.foil ? shown.foilText : String(id));

  useEffect(() => {
    const el = canvas.current;
    if (!el || !shown) return;
    const id = requestAnimationFrame(() => {
      const prepared = prepareCanvas2d(el);
      if (!prepared) return;
      const { g, width, height } = prepared;
      const cols = shown.to - shown.from;
      const cw = width / cols;
      const ch = height / L;
      for (let l = 0; l < L; l++) {
        for (let t = 0; t < cols; t++) {
          const v = shown.restored[l * cols + t] as number;
          g.fillStyle = colormapCss('diverging', (v - range.min) / (range.max - range.min));
          // Whole pixels, overlapping by one, so that no seam shows between cells.
          g.fillRect(Math.floor(t * cw), Math.floor(l * ch), Math.ceil(cw) + 1, Math.ceil(ch) + 1);
        }
      }
    });
    return () => cancelAnimationFrame(id);
  }, [shown, L, range, size.width, size.height]);

  const run = () => {
    if (work.running) return;
    let corrupt: { ids: number[] } | { text: string };
    if (idsOnly) {
      const ids = parseIds(corruptText);
      if (!ids) {
        setError('The corrupted prompt: this model has no tokenizer, so type token ids, e.g. "5, 17, 3".');
        return;
      }
      corrupt = { ids };
    } else {
      if (!corruptText.trim()) {
        setError('Type the corrupted prompt: as many tokens as the trace on screen, differing where the answer should change.');
        return;
      }
      corrupt = { text: corruptText };
    }
    const tokens = parseRange(tokenRange.fromText, tokenRange.toText, T, 'Tokens');
    if ('error' in tokens) {
      setError(tokens.error);
      return;
    }
    const { from, to } = tokens;
    const answer = parseTarget(answerText, labels);
    const foil = parseTarget(foilText, labels);
    if ('error' in answer || 'error' in foil) {
      setError('error' in answer ? answer.error : 'error' in foil ? foil.error : '');
      return;
    }
    setError(null);
    const onScreen = trace;
    const doneTexts = cleanTexts;
    work.run('patching', { modelId, traceId: clean.traceId, corrupt, site, from, to, ...(answer.id !== null ? { answer: answer.id } : {}), ...(foil.id !== null ? { foil: foil.id } : {}) }).then(
      (result) => {
        if (result) {
          setDone({ trace: onScreen, result, texts: doneTexts });
          setCursor(null);
        }
      },
      (e: unknown) => setError(`Patching failed: ${message(e)}`),
    );
  };

  const show = (cell: { token: number; channel: number } | null) => {
    setCursor(cell);
    setHover(cell && shown ? shown.from + cell.token : null);
  };
  const onPointer = (e: PointerEvent<HTMLCanvasElement>) => {
    const box = e.currentTarget.getBoundingClientRect();
    show(cellAt2d(view, e.clientX - box.left, e.clientY - box.top, box.width, box.height));
  };
  const onKey = (e: KeyboardEvent) => {
    if (!shown) return;
    if (e.key === 'Escape') return show(null);
    const next = moveCursor2d(cursor, e.key, n, L);
    if (next) {
      e.preventDefault();
      show(next);
    }
  };
  const c = shown && cursor ? cursor.channel * n + cursor.token : null;
  const at = shown && cursor ? shown.from + cursor.token : null;

  return (
    <AnalysisSection label="Patching" testId="patching-panel" busy={work.running} title={<>Patching: restore one site of the clean run — a layer’s state, residual stream or mixer output at one token — in a corrupted run</>}>
      <label style={{ display: 'flex', flexDirection: 'column', gap: 2 }}>
        <span data-testid="patching-clean" data-trace={clean.traceId} data-tokens={T}>
          Corrupted prompt (the clean one is {clean === trace ? 'the trace on screen' : 'Compare’s prompt A'}, {T} tokens; the same length, token for token)
        </span>
        <textarea aria-label="Corrupted prompt" rows={2} value={corruptText} onChange={(e) => setTyped(e.target.value)} placeholder={idsOnly ? 'Token ids' : 'Text'} />
      </label>
      <Controls>
        <button type="button" disabled={!pair} onClick={takeComparePair} title={pair ? `Clean = Compare’s prompt A (${pair.a.ids.length} tokens), corrupted = its prompt B (${pair.b.ids.length} tokens)` : 'Run a comparison in the Compare panel first: its prompts A and B become clean and corrupted'}>
          Use the Compare pair
        </button>
        {clean !== trace && (
          <button type="button" onClick={() => setCleanFrom(null)}>
            Clean: the trace on screen
          </button>
        )}
        <label className="setting" title="What is restored from the clean run at (layer, token)">
          <span>Site</span>
          <select aria-label="Patching site" value={site} onChange={(e) => setSite(e.target.value as PatchSite)}>
            <option value="state">state h after token t</option>
            <option value="residual">residual stream at t</option>
            <option value="mixer">mixer output at t</option>
          </select>
        </label>
        <TokenRangeInputs label="Patching" what="Tokens" title="The tokens patched (each cell runs the rest of the prompt: narrow this on long prompts)" tokens={T} range={tokenRange} />
        <TargetInput label="Patching answer" placeholder="clean top token" title="The clean answer (empty: the clean run's most likely next token); an id or a label" value={answerText} onChange={setAnswer} onEnter={run} />
        <TargetInput label="Patching foil" placeholder="corrupted top token" title="The competing token (empty: the corrupted run's most likely next token); an id or a label" value={foilText} onChange={setFoil} onEnter={run} />
        <button type="button" className="primary" onClick={run} disabled={work.running}>
          Patch the state
        </button>
        <button type="button" disabled={!shown} onClick={() => shown && downloadCsv(toCsv(patchColumns(shown, shownTexts)), `patching-${shown.site}-answer${shown.answer}-foil${shown.foil}.csv`)}>
          Export patching CSV
        </button>
        <PublishControls label="patching" name={`patching-${shown?.site ?? site}-answer${shown?.answer ?? ''}`} build={() => (shown ? patchFigure(shown, shownTexts, name(shown.answer), name(shown.foil), blocks) : null)} />
      </Controls>
      {work.running && <WorkProgressBar label={`Patching ${T} tokens × every layer`} progress={work.progress} onCancel={work.cancel} testId="patching" />}
      <PanelStatus busy={null} error={error} testId="patching" />
      {shown && (
        <Stale stale={work.running} testId="patching-result" style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
          <div data-testid="patching-summary" data-site={shown.site} data-from={shown.from} data-to={shown.to} data-answer={shown.answer} data-foil={shown.foil} data-clean={String(shown.cleanDiff)} data-corrupt={String(shown.corruptDiff)}>
            logit(“{name(shown.answer)}”) − logit(“{name(shown.foil)}”) after the last token: clean {shown.cleanDiff.toPrecision(4)}, corrupted {shown.corruptDiff.toPrecision(4)}. A cell: the fraction of that difference restored with {SITE_WORDS[shown.site]} of the clean run{shown.site === 'state' ? ' (the last token’s state is read by nothing: 0)' : ''}.
          </div>
          <HeatmapAxes
            testId="patching"
            plotHeight={Math.max(120, 22 * L)}
            x={{ view: view.x, total: n, texts: shownTexts.slice(shown.from, shown.to), offset: shown.from, label: shown.site === 'state' ? 'token t (the state after it is patched)' : 'token t (patched at its position)' }}
            y={{ label: 'layer', view: view.y, total: L, names: shown.layers.map((l) => blockLabel(blocks, l)) }}
            colorbar={{ label: 'restored fraction', range, log: false, colormap: 'diverging' }}
          >
            <canvas
              ref={canvas}
              data-testid="patching-canvas"
              tabIndex={0}
              aria-label="Restored fraction per layer and token; arrow keys move the readout"
              style={PLOT_CANVAS_STYLE}
              onPointerMove={onPointer}
              onPointerLeave={() => show(null)}
              onKeyDown={onKey}
            />
            <CellOutline x={view.x} y={view.y} token={cursor?.token ?? null} channel={cursor?.channel ?? null} testId="patching-cursor" />
          </HeatmapAxes>
          <div data-testid="patching-readout" data-token={at ?? ''} data-layer={cursor ? shown.layers[cursor.channel] : ''} aria-live="polite" style={{ minHeight: 16 }}>
            {cursor && c !== null && at !== null
              ? `${blockLabel(blocks, shown.layers[cursor.channel] ?? 0)}, ${shown.site === 'state' ? 'state after' : shown.site === 'residual' ? 'residual stream at' : 'mixer output at'} token ${at} “${shownTexts[at] ?? ''}”: logit difference ${(shown.patchedDiff[c] ?? NaN).toPrecision(4)}, restored ${(shown.restored[c] ?? NaN).toFixed(3)}`
              : 'Point at a cell, or focus the heatmap and use the arrow keys.'}
          </div>
        </Stale>
      )}
    </AnalysisSection>
  );
}
