/**
 * Long engine work in the panels (trace, hidden attention, knockout, compare): `useLongWork`
 * starts a cancellable request and follows its 'work-progress' events (the store's workProgress,
 * by request id); `WorkProgressBar` shows them with a Cancel button (Escape cancels too); and
 * `Stale` dims the previous result, labelled "updating…", while the new one is computed.
 */
import { useCallback, useEffect, useRef, useState, type CSSProperties, type ReactNode } from 'react';
import { isCancelled } from '../../../app/analysis/cancel';
import type { CancellableKind, EngineRequests } from '../../../app/engine/protocol';
import type { EngineClient } from '../engine-client';
import { useStudio, type WorkProgressState } from '../store';

/** "40 of 300 tokens (13%)". */
export function progressText(p: { done: number; total: number; unit?: string }): string {
  const pct = p.total > 0 ? Math.floor((100 * p.done) / p.total) : 0;
  return `${p.done} of ${p.total}${p.unit ? ` ${p.unit}` : ''} (${pct}%)`;
}

/** One long request at a time for a panel: run it, follow its progress, cancel it. */
export function useLongWork(engine: EngineClient) {
  const [requestId, setRequestId] = useState<number | null>(null);
  const current = useRef<number | null>(null);
  const progress = useStudio(useCallback((s) => (requestId === null ? undefined : s.workProgress[requestId]), [requestId]));
  /** Runs the request; its result, or null when it was cancelled (other errors are thrown). */
  const run = useCallback(
    async <K extends CancellableKind>(kind: K, params: EngineRequests[K]['params']): Promise<EngineRequests[K]['result'] | null> => {
      const started = engine.start(kind, params);
      current.current = started.id;
      setRequestId(started.id);
      try {
        return await started.result;
      } catch (error) {
        if (isCancelled(error)) return null;
        throw error;
      } finally {
        useStudio.getState().endWork(started.id);
        if (current.current === started.id) {
          current.current = null;
          setRequestId(null);
        }
      }
    },
    [engine],
  );
  const cancel = useCallback(() => {
    const id = current.current;
    if (id !== null) void engine.request('cancel', { requestId: id });
  }, [engine]);
  return { running: requestId !== null, progress, run, cancel };
}

export interface WorkProgressBarProps {
  /** What runs, e.g. "Tracing 300 tokens". */
  label: string;
  progress: Pick<WorkProgressState, 'done' | 'total' | 'unit'> | undefined;
  onCancel: () => void;
  testId: string;
}

/** A progress bar (indeterminate until the first progress event) with Cancel; Escape cancels too. */
export function WorkProgressBar({ label, progress, onCancel, testId }: WorkProgressBarProps) {
  const cancel = useRef(onCancel);
  cancel.current = onCancel;
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape' && !event.defaultPrevented) cancel.current();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  return (
    <div role="status" className="work-progress" data-testid={`${testId}-progress`} data-done={progress?.done ?? ''} data-total={progress?.total ?? ''}>
      <span className="load-text">{label}</span>
      {progress ? <progress aria-label={`${label}: progress`} max={progress.total} value={progress.done} /> : <progress aria-label={`${label}: progress`} />}
      <span className="load-text">{progress ? progressText(progress) : 'starting…'}</span>
      <button type="button" onClick={onCancel} title="Stop this work (Escape)" data-testid={`${testId}-cancel`}>
        Cancel
      </button>
    </div>
  );
}

/** The previous result, dimmed and labelled ("updating…" while a new one is computed). */
export function Stale({ stale, label = 'updating…', children, testId, style }: { stale: boolean; label?: string; children: ReactNode; testId?: string; style?: CSSProperties }) {
  return (
    <div className={stale ? 'stale-result' : undefined} data-stale={stale ? 'true' : 'false'} data-testid={testId} aria-busy={stale} style={style}>
      {stale && <div className="stale-label">{label}</div>}
      {children}
    </div>
  );
}
