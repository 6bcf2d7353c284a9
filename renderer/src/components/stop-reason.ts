/** A generation's stop reason (app/model/generate.ts StopReason) as the app says it: "stopped: end of text". */
const WORDS: Record<string, string> = {
  'max-tokens': 'max tokens',
  'stop-string': 'stop string',
  'stop-id': 'stop id',
  'end-of-text': 'end of text',
  cancelled: 'cancelled',
};

export function stopReasonText(reason: string): string {
  return WORDS[reason] ?? reason;
}
