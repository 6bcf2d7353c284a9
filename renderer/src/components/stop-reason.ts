/**
 * A generation's stop reason (app/model/generate.ts StopReason) as the app shows it after
 * "stopped: ": the model's end-of-sequence token as "end of text", a hybrid's full KV caches as
 * "context full"; the other reasons by their names as before (max-tokens, stop-string, stop-id,
 * cancelled), which tests and users read.
 */
export function stopReasonText(reason: string): string {
  if (reason === 'context-full') return "context full (the attention layers' KV cache)";
  return reason === 'end-of-text' ? 'end of text' : reason;
}
