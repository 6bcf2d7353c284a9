/**
 * Compare: the selection score ‖Δ_t‖ (a trace's deltaNorm) of two traces by position, per layer
 * both traced, their difference B − A, per-layer summaries (means, the largest |B − A| and where)
 * and the positions where the two prompts' ids differ (the edit). Pure; the renderer's compare
 * panel draws and exports it.
 */

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
  meanA: number;
  meanB: number;
  /** Mean of B − A over the compared positions. */
  meanDiff: number;
  /** Largest |B − A| and where. */
  maxAbsDiff: number;
  maxAt: number;
}

export interface ScoreComparison {
  /** Layers traced in both, ascending. */
  layers: number[];
  /** Positions compared: 0 .. tokens − 1 (the shorter prompt's length). */
  tokens: number;
  /** Per layer of `layers`: ‖Δ_t‖ of A and B, and B − A, over the compared positions. */
  a: Float32Array[];
  b: Float32Array[];
  diff: Float64Array[];
  summaries: LayerDiffSummary[];
  /** Positions < tokens where the two prompts have different ids (the edit). */
  edited: number[];
}

/** The selection score ‖Δ_t‖ of two traces compared by position, per layer both traced. */
export function compareScores(a: ScoredTrace, b: ScoredTrace): ScoreComparison {
  const tokens = Math.min(a.ids.length, b.ids.length);
  const layers = a.layers.filter((l) => b.layers.includes(l)).sort((x, y) => x - y);
  const out: ScoreComparison = { layers, tokens, a: [], b: [], diff: [], summaries: [], edited: [] };
  for (let t = 0; t < tokens; t++) if (a.ids[t] !== b.ids[t]) out.edited.push(t);
  for (const layer of layers) {
    const na = a.deltaNorm[a.layers.indexOf(layer)];
    const nb = b.deltaNorm[b.layers.indexOf(layer)];
    if (!na || !nb || na.length < tokens || nb.length < tokens) throw new RangeError(`compareScores: layer ${layer} has fewer than ${tokens} scores`);
    const sa = na.slice(0, tokens);
    const sb = nb.slice(0, tokens);
    const diff = new Float64Array(tokens);
    let sumA = 0;
    let sumB = 0;
    let maxAbsDiff = -1;
    let maxAt = 0;
    for (let t = 0; t < tokens; t++) {
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
    out.summaries.push({ layer, meanA: sumA / tokens, meanB: sumB / tokens, meanDiff: (sumB - sumA) / tokens, maxAbsDiff: Math.max(0, maxAbsDiff), maxAt });
  }
  return out;
}
