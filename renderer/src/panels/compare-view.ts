/**
 * How the compare panel shows an alignment of two prompts (app/analysis/align.ts) as a diff:
 * every differing column with `context` same columns on each side, and the same columns between
 * them folded into one "… n same …" run. Pure.
 */
import { ALIGN_SAME } from '../../../app/analysis/align';

export type AlignmentRun = { kind: 'columns'; from: number; to: number } | { kind: 'folded'; from: number; to: number };

/** Runs covering columns 0 .. kind.length − 1 in order (`to` exclusive); a fold hides at least 2 columns. */
export function alignmentRuns(kind: ArrayLike<number>, context = 3): AlignmentRun[] {
  const T = kind.length;
  const shown = new Uint8Array(T);
  for (let t = 0; t < T; t++) {
    if (kind[t] === ALIGN_SAME) continue;
    for (let u = Math.max(0, t - context); u <= Math.min(T - 1, t + context); u++) shown[u] = 1;
  }
  // A fold of one column hides nothing worth hiding: show it.
  for (let t = 0; t < T; t++) if (!shown[t] && (t === 0 || shown[t - 1]) && (t === T - 1 || shown[t + 1])) shown[t] = 1;
  const runs: AlignmentRun[] = [];
  let from = 0;
  for (let t = 1; t <= T; t++) {
    if (t === T || shown[t] !== shown[from]) {
      runs.push({ kind: shown[from] ? 'columns' : 'folded', from, to: t });
      from = t;
    }
  }
  return runs;
}
