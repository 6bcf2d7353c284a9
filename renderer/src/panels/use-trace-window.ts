/**
 * Windows of a long trace (detail 'windows', issue 18): the Δ, B and C of one layer over tokens
 * [from, to), fetched from the engine (`traceWindow`, recomputed on the GPU from the nearest
 * state checkpoint) when the window on screen or the layer changes.
 *
 * `WindowLoader` (pure, unit-tested) keeps the most recent windows (keyed by trace, layer, from,
 * to; least recently used dropped first), asks for a window only when it is not kept and not
 * already asked for, and reports only the latest wish: an older response is kept in the cache but
 * does not change what is shown, an older failure is dropped. `useTraceWindow` wraps it for React:
 * it waits until the wished window has rested for a moment (dragging the overview does not queue a
 * request per pointer move) and returns the windows of the range shown (the wished one once it
 * has arrived, until then the last one shown), the "loading window …" status and the last error.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { TraceResult, TraceWindowResult } from '../../../app/engine/protocol';
import type { EngineClient } from '../engine-client';
import { useStudio } from '../store';
import { clampWindow, defaultWindow, shiftToken, windowView, type TraceView } from './long-trace';

export interface WindowWish {
  traceId: string;
  layer: number;
  from: number;
  to: number;
}

export const windowKey = (w: WindowWish) => `${w.traceId}|${w.layer}|${w.from}|${w.to}`;

export interface WindowLoaderState {
  /** The range whose windows are shown: the wished one when its window is here, else the last one that was. */
  shown: { traceId: string; from: number; to: number } | null;
  /** The wished window while it loads. */
  loading: WindowWish | null;
  /** Why the wished window failed. */
  error: string | null;
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export class WindowLoader {
  private readonly cache = new Map<string, TraceWindowResult>();
  private readonly asked = new Set<string>();
  private wish: WindowWish | null = null;
  state: WindowLoaderState = { shown: null, loading: null, error: null };

  constructor(
    private readonly fetch: (wish: WindowWish) => Promise<TraceWindowResult>,
    private readonly onChange: (state: WindowLoaderState) => void,
    readonly capacity = 12,
  ) {}

  /** The kept windows of one range (any layer). */
  windowsOf(range: { traceId: string; from: number; to: number } | null): TraceWindowResult[] {
    if (!range) return [];
    return [...this.cache.values()].filter((w) => w.traceId === range.traceId && w.from === range.from && w.to === range.to);
  }

  has(wish: WindowWish): boolean {
    return this.cache.has(windowKey(wish));
  }

  private set(state: Partial<WindowLoaderState>): void {
    this.state = { ...this.state, ...state };
    this.onChange(this.state);
  }

  private keep(key: string, window: TraceWindowResult): void {
    this.cache.delete(key);
    this.cache.set(key, window);
    while (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value as string);
  }

  /** Shows `wish` (null: nothing), fetching its window when it is not kept. */
  want(wish: WindowWish | null): void {
    this.wish = wish;
    if (!wish) {
      this.set({ shown: null, loading: null, error: null });
      return;
    }
    const key = windowKey(wish);
    const kept = this.cache.get(key);
    if (kept) {
      this.keep(key, kept); // most recently used
      this.set({ shown: { traceId: wish.traceId, from: wish.from, to: wish.to }, loading: null, error: null });
      return;
    }
    // Another trace's windows are not shown while this one's load.
    const shown = this.state.shown?.traceId === wish.traceId ? this.state.shown : null;
    this.set({ shown, loading: wish, error: null });
    if (this.asked.has(key)) return;
    this.asked.add(key);
    this.fetch(wish).then(
      (window) => {
        this.asked.delete(key);
        this.keep(key, window);
        if (this.wish && windowKey(this.wish) === key) this.set({ shown: { traceId: wish.traceId, from: wish.from, to: wish.to }, loading: null, error: null });
      },
      (error: unknown) => {
        this.asked.delete(key);
        if (this.wish && windowKey(this.wish) === key) this.set({ loading: null, error: `Window ${wish.from}–${wish.to - 1} of layer ${wish.layer}: ${message(error)}` });
      },
    );
  }
}

/** Milliseconds a wished window must stay the same before it is asked for. */
const SETTLE_MS = 120;

/**
 * The windows of `trace` (a 'windows' trace; null: none) to show for `layer` over `range`: the kept
 * windows of the range shown, that range, the loading status and the error.
 */
export function useTraceWindow(engine: EngineClient, modelId: string, trace: TraceResult | null, layer: number | undefined, range: { from: number; to: number } | null) {
  const [state, setState] = useState<WindowLoaderState>({ shown: null, loading: null, error: null });
  const traceId = trace?.traceId;
  // A loader per trace (and model): its windows are that trace's.
  const current = useMemo(() => {
    if (!traceId) return null;
    return new WindowLoader((wish) => engine.request('traceWindow', { modelId, ...wish }), setState);
  }, [engine, modelId, traceId]);
  const from = range?.from;
  const to = range?.to;
  useEffect(() => {
    if (!current || layer === undefined || from === undefined || to === undefined || !traceId) {
      current?.want(null);
      return;
    }
    const wish = { traceId, layer, from, to };
    // A kept window shows at once; a new one after the wish has rested.
    if (current.has(wish) || current.state.shown === null) {
      current.want(wish);
      return;
    }
    const timer = setTimeout(() => current.want(wish), SETTLE_MS);
    return () => clearTimeout(timer);
  }, [current, traceId, layer, from, to]);
  const shown = current && state.shown?.traceId === traceId ? state.shown : null;
  const windows = useMemo(() => current?.windowsOf(shown) ?? [], [current, shown]);
  // Loading from the moment the wish differs from what is shown (also while it settles).
  const ready = windows.some((w) => w.layer === layer && w.from === from && w.to === to);
  const error = current ? state.error : null;
  const loading = current && !ready && !error && layer !== undefined && from !== undefined && to !== undefined ? { layer, from, to } : null;
  return { shown, windows, loading, error };
}

/**
 * What the selection panels show of `result`: the trace itself, or for a long trace (detail
 * 'windows') the window on screen as a TraceView (long-trace.ts windowView; null until its first
 * window of the selected layer has arrived), with the window [from, to) the user moves (default:
 * the last min(T, 2048) tokens; its size up to TRACE_WINDOW_MAX), the loading status and error.
 */
export function useLongTraceView(engine: EngineClient, modelId: string, result: TraceResult | null, layerIndex: number, paused = false) {
  const long = result?.detail === 'windows' ? result : null;
  const T = long?.ids.length ?? 0;
  const [chosen, setChosen] = useState<{ traceId: string; from: number; to: number } | null>(null);
  const window = useMemo(() => (long ? (chosen?.traceId === long.traceId ? clampWindow(chosen.from, chosen.to - chosen.from, T) : defaultWindow(T)) : null), [long, chosen, T]);
  const setWindow = useCallback((w: { from: number; to: number }) => {
    if (long) setChosen({ traceId: long.traceId, ...clampWindow(w.from, w.to - w.from, T) });
  }, [long, T]);
  // While a generation runs, its live trace is not kept yet and the engine serves no window:
  // nothing is asked for until it ends (the overview fills meanwhile).
  const fetched = useTraceWindow(engine, modelId, long, long?.layers[layerIndex], paused ? null : window);
  const { shown, windows } = fetched;
  // The panels' picked and hovered tokens are local indices of the view: when the view moves,
  // the picked token stays the same absolute token (or goes when it is outside), the hover goes.
  const lastFrom = useRef<{ traceId: string; from: number } | null>(null);
  useEffect(() => {
    const before = lastFrom.current;
    lastFrom.current = shown ? { traceId: shown.traceId, from: shown.from } : null;
    if (!shown || !before || before.traceId !== shown.traceId || before.from === shown.from) return;
    const s = useStudio.getState();
    s.setTraceMemoryToken(shiftToken(s.traceMemoryToken, before.from, shown.from, shown.to - shown.from));
    s.setTraceHoverToken(null);
  }, [shown]);
  const view = useMemo<TraceView | null>(() => {
    if (!result) return null;
    if (!long) return result;
    return shown ? windowView(long, shown.from, shown.to, windows) : null;
  }, [result, long, shown, windows]);
  const waiting = long && paused && !shown ? 'The detail window is recomputed when the generation ends; the overview fills as tokens come.' : null;
  return { long, window, setWindow, view, loading: fetched.loading, error: fetched.error, waiting };
}
