/**
 * File actions for sessions and traces: "Open trace or session…" (a file picker; dropping the file
 * on the window does the same) and "Save session" (the model reference, both prompt boxes, the
 * trace and the view, as one .mamba-session file: app/analysis/session.ts). Ctrl/Cmd+Shift+O and
 * Ctrl/Cmd+S in web mode; the desktop menu sends the same commands.
 */
import { useCallback, useEffect } from 'react';
import { encodeSession, SESSION_EXTENSION } from '../../../app/analysis/session';
import type { Host } from '../host';
import { downloadBytes } from '../panels/csv';
import { selectTrace, useStudio } from '../store';
import { openSessionOrTrace, pickSessionFile } from '../session/open';
import { sessionFileName, sessionStateOf } from '../session/session-io';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function saveSession(): void {
  const s = useStudio.getState();
  try {
    const state = sessionStateOf(s);
    const trace = s.trace?.state === 'done' ? { result: s.trace.result, prompt: s.trace.prompt ?? { ids: s.trace.result.ids } } : null;
    downloadBytes(encodeSession(state, trace), sessionFileName(state.model));
    s.notify('info', `Session saved${trace ? ` with its trace of ${trace.result.ids.length} tokens` : ''}.`);
  } catch (error) {
    s.notify('error', `Saving the session failed: ${message(error)}`);
  }
}

export function openSessionDialog(): void {
  void pickSessionFile().then((file) => file && openSessionOrTrace(file));
}

export function SessionBar({ host }: { host: Host }) {
  const trace = useStudio(selectTrace);
  const onKey = useCallback((event: KeyboardEvent) => {
    if (!(event.ctrlKey || event.metaKey)) return;
    if (event.key === 's' || event.key === 'S') {
      event.preventDefault();
      saveSession();
    } else if ((event.key === 'O' || event.key === 'o') && event.shiftKey) {
      event.preventDefault();
      openSessionDialog();
    }
  }, []);
  useEffect(
    () =>
      host.api.on('menuCommand', (command) => {
        if (command === 'open-session') openSessionDialog();
        else if (command === 'save-session') saveSession();
      }),
    [host],
  );
  useEffect(() => {
    if (host.shell === 'desktop') return; // the menu's accelerators
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [host, onKey]);
  return (
    <div className="session-bar actions" role="toolbar" aria-label="Session">
      <button type="button" onClick={openSessionDialog} title={`Open a saved session (${SESSION_EXTENSION}) or an exported trace (.safetensors), without the model (Ctrl+Shift+O)`}>
        Open trace or session…
      </button>
      <button type="button" onClick={saveSession} title="Save the model reference, prompts, trace and view to one file (Ctrl+S)">
        Save session{trace?.state === 'done' ? '' : ' (no trace yet)'}
      </button>
    </div>
  );
}
