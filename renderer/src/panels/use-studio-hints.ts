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

/** A model's studio.json bytes where they are not at a URL (web mode's models held in memory), else null. */
export type StudioJsonReader = (model: ModelEntry) => Promise<ArrayBuffer> | null;
let readLocal: StudioJsonReader = () => null;

/** Set once by main.tsx from the host (web mode's in-memory files have no URL to fetch). */
export function setStudioJsonReader(reader: StudioJsonReader): void {
  readLocal = reader;
  read.clear();
}

function hintsOf(model: ModelEntry): Promise<StudioHints> {
  const url = `${model.baseUrl}/studio.json`;
  let hints = read.get(url);
  if (!hints) {
    const local = readLocal(model);
    const json = local ? local.then((bytes) => JSON.parse(new TextDecoder().decode(bytes)) as unknown) : fetch(url).then((r) => (r.ok ? (r.json() as Promise<unknown>) : null));
    hints = json.then(studioHints, () => ({}));
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
