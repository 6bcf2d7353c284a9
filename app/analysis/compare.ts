/**
 * Compare: the selection score ‖Δ_t‖ (a trace's deltaNorm) of two traces per layer both traced,
 * token by token after aligning the two prompts' ids as a text diff does (align.ts: same,
 * replaced, inserted, deleted), their difference B − A over the columns that pair a token of A
 * with one of B, per-layer summaries (means, the largest |B − A| and where) and the columns that
 * are not the same token (the edit). Pure; the renderer's compare panel draws and exports it.
 */
import { ALIGN_SAME, alignTokens, type TokenAlignment } from './align.js';

export type { TokenAlignment };

/** What a comparison reads of a trace (a TraceResult has it). */
export interface ScoredTrace {
  ids: readonly number[];
  /** The traced layers; deltaNorm follows this order. */
  layers: readonly number[];
  /** ‖Δ_t‖ per traced layer, [T]. */
  deltaNorm: readonly Float32Array[];
}

export interface LayerDiffSummary {
  layer: number;
  /** Means over the paired columns (same and replaced). */
  meanA: number;
  meanB: number;
  /** Mean of B − A over the paired columns (0 when there are none). */
  meanDiff: number;
  /** Largest |B − A| over the paired columns, and its column (0 at 0 when none differ). */
  maxAbsDiff: number;
  maxAt: number;
}

export interface ScoreComparison {
  /** Layers traced in both, ascending. */
  layers: number[];
  /** Columns of the alignment: 0 .. tokens − 1 (equal lengths and only substitutions: the positions). */
  tokens: number;
  /** Which token of A and of B each column holds, and what kind of column it is. */
  alignment: TokenAlignment;
  /** Columns that pair a token of A with one of B (same or replaced): what means and B − A are over. */
  paired: number;
  /**
   * Per layer of `layers`, per column: ‖Δ_t‖ of A's token and of B's token (NaN where the column
   * has none: inserted, deleted), and B − A (NaN unless both are there).
   */
  a: Float32Array[];
  b: Float32Array[];
  diff: Float64Array[];
  summaries: LayerDiffSummary[];
  /** Columns that are not the same token (replaced, inserted, deleted): the edit. */
  edited: number[];
}

/**
 * The selection score ‖Δ_t‖ of two traces compared token by token after aligning their ids
 * (alignTokens), per layer both traced. Throws align.ts's AlignmentTooLargeError for sequences
 * too different to align.
 */
export function compareScores(a: ScoredTrace, b: ScoredTrace): ScoreComparison {
  const alignment = alignTokens(a.ids, b.ids);
  const tokens = alignment.kind.length;
  const layers = a.layers.filter((l) => b.layers.includes(l)).sort((x, y) => x - y);
  const paired = alignment.counts.same + alignment.counts.replaced;
  const out: ScoreComparison = { layers, tokens, alignment, paired, a: [], b: [], diff: [], summaries: [], edited: [] };
  for (let t = 0; t < tokens; t++) if (alignment.kind[t] !== ALIGN_SAME) out.edited.push(t);
  for (const layer of layers) {
    const na = a.deltaNorm[a.layers.indexOf(layer)];
    const nb = b.deltaNorm[b.layers.indexOf(layer)];
    if (!na || !nb || na.length < a.ids.length || nb.length < b.ids.length) {
      throw new RangeError(`compareScores: layer ${layer} has fewer scores than tokens (A ${na?.length ?? 0} of ${a.ids.length}, B ${nb?.length ?? 0} of ${b.ids.length})`);
    }
    const sa = new Float32Array(tokens).fill(NaN);
    const sb = new Float32Array(tokens).fill(NaN);
    const diff = new Float64Array(tokens).fill(NaN);
    let sumA = 0;
    let sumB = 0;
    let maxAbsDiff = -1;
    let maxAt = 0;
    for (let t = 0; t < tokens; t++) {
      const ia = alignment.a[t] as number;
      const ib = alignment.b[t] as number;
      if (ia >= 0) sa[t] = na[ia] as number;
      if (ib >= 0) sb[t] = nb[ib] as number;
      if (ia < 0 || ib < 0) continue;
      const d = (sb[t] as number) - (sa[t] as number);
      diff[t] = d;
      sumA += sa[t] as number;
      sumB += sb[t] as number;
      if (Math.abs(d) > maxAbsDiff) {
        maxAbsDiff = Math.abs(d);
        maxAt = t;
      }
    }
    out.a.push(sa);
    out.b.push(sb);
    out.diff.push(diff);
    const n = Math.max(1, paired);
    out.summaries.push({ layer, meanA: sumA / n, meanB: sumB / n, meanDiff: (sumB - sumA) / n, maxAbsDiff: Math.max(0, maxAbsDiff), maxAt });
  }
  return out;
}
