/**
 * Opening a session or trace file in the page: a picker (web mode and desktop alike: the page
 * reads the File itself, no path is involved), or a File from a drop or from main (a file
 * association, as bytes). The file is read and checked completely before the store changes; a
 * bad file is one error notice naming it, and what was open stays open.
 */
import { blobSource } from '../../../app/formats/source';
import { SESSION_EXTENSION } from '../../../app/analysis/session';
import { useStudio } from '../store';
import { applyOpenedFile, readOpenedFile, sessionFileKind } from './session-io';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Opens one File as a session or a trace; false when it is neither (a model, for the model opener). */
export async function openSessionOrTrace(file: File): Promise<boolean> {
  const kind = await sessionFileKind([file]);
  if (!kind) {
    useStudio.getState().notify('error', `${file.name}: not a session (${SESSION_EXTENSION}) or an exported trace (.safetensors with the studio's trace metadata)`);
    return false;
  }
  try {
    const opened = await readOpenedFile(blobSource(file, file.name), kind);
    const store = useStudio.getState();
    const { model, wanted } = applyOpenedFile(store, opened);
    if (wanted && !model) store.notify('info', `${file.name}: the model ${wanted.name} is not in the library${wanted.source === 'user' ? ' (open it to run it again)' : ''}; the trace is shown read-only.`);
  } catch (error) {
    useStudio.getState().notify('error', `Could not open ${message(error).startsWith(file.name) ? '' : `${file.name}: `}${message(error)}`);
  }
  return true;
}

/** Files dropped on the window: a session or trace opens here; anything else is left to the model opener (false). */
export async function openDroppedSession(files: File[]): Promise<boolean> {
  if (!(await sessionFileKind(files))) return false;
  return openSessionOrTrace(files[0] as File);
}

/** The file picker for sessions and traces (needs a user gesture). */
export function pickSessionFile(): Promise<File | null> {
  return new Promise((resolve) => {
    const input = document.createElement('input');
    input.type = 'file';
    input.accept = `${SESSION_EXTENSION},.safetensors`;
    input.dataset.testid = 'session-file-input';
    input.style.display = 'none';
    document.body.append(input);
    const done = (file: File | null) => {
      input.remove();
      resolve(file);
    };
    input.addEventListener('change', () => done(input.files?.[0] ?? null), { once: true });
    input.addEventListener('cancel', () => done(null), { once: true });
    input.click();
  });
}
