/**
 * A range of a trace's tokens [from, to) typed in two boxes (the logit lens's positions, the
 * patched tokens): defaults until typed, back to the defaults when another trace comes on screen,
 * and `parseRange` checks it.
 */
import { useEffect, useState } from 'react';

/** The typed range as numbers, or why it is not one of a prompt of `tokens`. */
export function parseRange(fromText: string, toText: string, tokens: number, what: string): { from: number; to: number } | { error: string } {
  const from = Number(fromText);
  const to = Number(toText);
  return fromText.trim() !== '' && toText.trim() !== '' && Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from < to && to <= tokens
    ? { from, to }
    : { error: `${what} “${fromText}” … “${toText}” are not a range of the prompt: whole numbers with 0 ≤ from < to ≤ ${tokens}.` };
}

export function useTokenRange(traceId: string, defaults: { from: number; to: number }) {
  const [typedFrom, setFrom] = useState<string | null>(null);
  const [typedTo, setTo] = useState<string | null>(null);
  useEffect(() => {
    setFrom(null);
    setTo(null);
  }, [traceId]);
  return { fromText: typedFrom ?? String(defaults.from), toText: typedTo ?? String(defaults.to), setFrom, setTo };
}

export function TokenRangeInputs({ label, what, title, tokens, range }: { label: string; what: string; title: string; tokens: number; range: ReturnType<typeof useTokenRange> }) {
  return (
    <label className="setting" title={title}>
      <span>{what}</span>
      <input type="number" aria-label={`${label} from`} min={0} max={tokens - 1} value={range.fromText} onChange={(e) => range.setFrom(e.target.value)} style={{ width: 70 }} />
      <span>to</span>
      <input type="number" aria-label={`${label} to`} min={1} max={tokens} value={range.toText} onChange={(e) => range.setTo(e.target.value)} style={{ width: 70 }} />
    </label>
  );
}
