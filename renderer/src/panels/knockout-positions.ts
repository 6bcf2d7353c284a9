/**
 * Knockout's effect at every later position (KnockoutResult.klByPosition: KL(baseline ‖ knocked)
 * of the next-token distributions after each position from the knocked token on): as a curve over
 * every position of the prompt (NaN before the token, where both runs are the same computation),
 * its largest value and where, and CSV columns.
 */
import type { KnockoutResult } from '../../../app/engine/protocol';
import type { CsvColumn } from './csv';

/** KL per position over the whole prompt of `tokens`: NaN before the knocked token. */
export function klCurve(result: Pick<KnockoutResult, 'token' | 'klByPosition'>, tokens: number): Float64Array {
  const out = new Float64Array(tokens).fill(NaN);
  result.klByPosition.forEach((kl, i) => {
    if (result.token + i < tokens) out[result.token + i] = kl;
  });
  return out;
}

/** The largest KL after the knocked token, and its position (the first such, on ties). */
export function klPeak(result: Pick<KnockoutResult, 'token' | 'klByPosition'>): { position: number; kl: number } | null {
  let best: { position: number; kl: number } | null = null;
  result.klByPosition.forEach((kl, i) => {
    if (Number.isFinite(kl) && (!best || kl > best.kl)) best = { position: result.token + i, kl };
  });
  return best;
}

/** CSV: one row per position from the knocked token on (position, its token text, KL in nats). */
export function klPositionColumns(result: Pick<KnockoutResult, 'token' | 'klByPosition'>, texts: readonly string[]): CsvColumn[] {
  const positions = result.klByPosition.map((_, i) => result.token + i);
  return [
    { name: 'position', values: positions },
    { name: 'token', values: positions.map((p) => texts[p] ?? '') },
    { name: 'KL(baseline || knocked) nats', values: result.klByPosition },
  ];
}
