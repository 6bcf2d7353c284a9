/**
 * Preload (sandboxed, CommonJS): exposes the contract as `window.studio`, one function per
 * method, plus `window.studioFiles.grantForFile` for drag and drop: it takes a File the user
 * dropped or picked, asks Electron for its path here, in the isolated world, and returns the
 * path grant main gives for it (main/path-grants.ts) — the page never sees a path, and cannot
 * make one up (a File made by script has none). Nothing else of Electron or Node reaches the page.
 */
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron';
import {
  DROP_GRANT_CHANNEL,
  eventChannel,
  eventNames,
  invokeChannel,
  invokeNames,
  type EventName,
  type Events,
  type StudioApi,
  type StudioErrorPayload,
} from '../app/contract.js';

type Envelope = { ok: true; value: unknown } | { ok: false; error: StudioErrorPayload };

const methods = Object.fromEntries(
  invokeNames.map((name) => [
    name,
    async (...args: unknown[]) => {
      const reply = (await ipcRenderer.invoke(invokeChannel(name), ...args)) as Envelope;
      if (reply.ok) return reply.value;
      const error = new Error(reply.error.message);
      error.name = `StudioError[${reply.error.code}]`;
      throw error;
    },
  ]),
);

const api = {
  ...methods,
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    if (!eventNames.includes(event)) throw new Error(`Unknown event ${String(event)}`);
    const wrapped = (_event: IpcRendererEvent, payload: Events[E]) => listener(payload);
    ipcRenderer.on(eventChannel(event), wrapped);
    return () => ipcRenderer.removeListener(eventChannel(event), wrapped);
  },
} as StudioApi;

contextBridge.exposeInMainWorld('studio', api);
contextBridge.exposeInMainWorld('studioFiles', {
  async grantForFile(file: File): Promise<string> {
    let filePath = '';
    try {
      filePath = webUtils.getPathForFile(file);
    } catch {
      // Not a File.
    }
    if (!filePath) throw new Error('Only files and folders dropped from the disk can be opened');
    const reply = (await ipcRenderer.invoke(DROP_GRANT_CHANNEL, filePath)) as Envelope;
    if (!reply.ok) throw new Error(reply.error.message);
    return reply.value as string;
  },
});
