/**
 * A model's studio.json, read once per model (bundled models have one) and shared by the panels
 * that use it: the generate panel (suggested prompts, sampling defaults) and the selection panels
 * (labels, focus channels, a prompt, what to look at). Unreadable or malformed: no hints.
 */
import { useEffect, useState } from 'react';
import type { ModelEntry } from '../../../app/contract';
import { studioHints, type StudioHints } from './selection';

const NONE: StudioHints = {};
const read = new Map<string, Promise<StudioHints>>();

function hintsOf(model: ModelEntry): Promise<StudioHints> {
  const url = `${model.baseUrl}/studio.json`;
  let hints = read.get(url);
  if (!hints) {
    hints = fetch(url)
      .then((r) => (r.ok ? (r.json() as Promise<unknown>) : null))
      .then(studioHints, () => ({}));
    read.set(url, hints);
  }
  return hints;
}

export function useStudioHints(model: ModelEntry): StudioHints {
  const [hints, setHints] = useState<{ for: string; hints: StudioHints } | null>(null);
  useEffect(() => {
    if (!model.files.includes('studio.json')) return;
    let live = true;
    void hintsOf(model).then((h) => live && setHints({ for: model.id, hints: h }));
    return () => {
      live = false;
    };
  }, [model]);
  return hints?.for === model.id ? hints.hints : NONE;
}
