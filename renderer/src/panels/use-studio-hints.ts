/**
 * A model's studio.json, read once per model (bundled models have one) and shared by the panels
 * that use it: the generate panel (suggested prompts, sampling defaults) and the selection panels
 * (labels, focus channels, a prompt, what to look at). Unreadable or malformed: no hints.
 */
import { useEffect, useState } from 'react';
import type { ModelEntry } from '../../../app/contract';
import { studioHints, type StudioHints } from './selection';

const NONE: StudioHints = {};
/** Each studio.json's read, and its hints once read: a panel that mounts after the read starts with them. */
const read = new Map<string, { promise: Promise<StudioHints>; hints?: StudioHints }>();

/** A model's studio.json bytes where they are not at a URL (web mode's models held in memory), else null. */
export type StudioJsonReader = (model: ModelEntry) => Promise<ArrayBuffer> | null;
let readLocal: StudioJsonReader = () => null;

/** Set once by main.tsx from the host (web mode's in-memory files have no URL to fetch). */
export function setStudioJsonReader(reader: StudioJsonReader): void {
  readLocal = reader;
  read.clear();
}

const keyOf = (model: ModelEntry) => `${model.baseUrl}/studio.json`;

/** A read that has not answered by then counts as no hints, so the trace box (read-only meanwhile) never stays locked. */
const READ_LIMIT_MS = 20_000;

function hintsOf(model: ModelEntry): Promise<StudioHints> {
  const url = keyOf(model);
  let entry = read.get(url);
  if (!entry) {
    const local = readLocal(model);
    const json = local ? local.then((bytes) => JSON.parse(new TextDecoder().decode(bytes)) as unknown) : fetch(url).then((r) => (r.ok ? (r.json() as Promise<unknown>) : null));
    const limit = new Promise<null>((resolve) => setTimeout(() => resolve(null), READ_LIMIT_MS));
    const started: { promise: Promise<StudioHints>; hints?: StudioHints } = {
      promise: Promise.race([json, limit])
        .then(studioHints, () => ({}))
        .then((h) => (started.hints = h)),
    };
    entry = started;
    read.set(url, entry);
  }
  return entry.promise;
}

/**
 * Starts reading a model's studio.json (when it has one) without waiting: the load panel calls it
 * for the selected model, so the panels that mount once the model is on the GPU start with its
 * hints (the trace box with its suggested prompt) instead of filling in a moment later.
 */
export function prefetchStudioHints(model: ModelEntry): void {
  if (model.files.includes('studio.json')) void hintsOf(model);
}

/**
 * The model's hints and whether they are settled: false while its studio.json is being read (the
 * hints are then empty and may still change), true once read, or at once for a model without one.
 */
export function useStudioHintsState(model: ModelEntry): { hints: StudioHints; settled: boolean } {
  const has = model.files.includes('studio.json');
  const key = keyOf(model);
  const [, setReads] = useState(0);
  const known = has ? read.get(key)?.hints : NONE;
  useEffect(() => {
    if (!has || read.get(key)?.hints) return;
    let live = true;
    void hintsOf(model).then(() => live && setReads((n) => n + 1));
    return () => {
      live = false;
    };
  }, [model, has, key]);
  return known ? { hints: known, settled: true } : { hints: NONE, settled: false };
}

export function useStudioHints(model: ModelEntry): StudioHints {
  return useStudioHintsState(model).hints;
}
