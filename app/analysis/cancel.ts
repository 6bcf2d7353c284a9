/**
 * Cancelling long analysis work (a trace, hidden attention, a knockout): the engine hands each
 * request an AbortSignal, the analysis checks it between GPU submits (chunks, row bands) with
 * `throwIfCancelled`, and a cancelled request fails with CANCELLED_MESSAGE — which crosses the
 * worker boundary as text, so the UI tells it from a real failure with `isCancelled`.
 */

/** The error text of a cancelled request (the UI shows no error for it). */
export const CANCELLED_MESSAGE = 'Cancelled.';

export class CancelledError extends Error {
  constructor() {
    super(CANCELLED_MESSAGE);
    this.name = 'CancelledError';
  }
}

/** Throws CancelledError when `signal` has been aborted. */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

/** Whether an error (or its message, as the engine's responses carry it) is a cancellation. */
export function isCancelled(error: unknown): boolean {
  if (error instanceof CancelledError) return true;
  const text = error instanceof Error ? error.message : typeof error === 'string' ? error : null;
  return text === CANCELLED_MESSAGE;
}

/** Progress of long work: `done` of `total` `unit`s (tokens, rows, positions). */
export type WorkProgress = (done: number, total: number) => void;
