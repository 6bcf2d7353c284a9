/**
 * The sampling settings a generation starts from in the app (the Generate panel's defaults, which
 * a user changes there), and what the bench's second decode rate samples with.
 */
export const DEFAULT_SAMPLING = { temperature: 0.8, topK: 40, topP: 0.95, repetitionPenalty: 1 } as const;
