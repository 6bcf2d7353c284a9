/**
 * A generation's stop reason (app/model/generate.ts StopReason) as the app shows it after
 * "stopped: ": the model's end-of-sequence token as "end of text"; the other reasons by their
 * names as before (max-tokens, stop-string, stop-id, cancelled), which tests and users read.
 */
export function stopReasonText(reason: string): string {
  return reason === 'end-of-text' ? 'end of text' : reason;
}
