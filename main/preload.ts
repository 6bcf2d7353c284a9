/**
 * Preload (sandboxed, CommonJS): exposes the contract as `window.studio`, one function per
 * method, plus `window.studioFiles.pathForFile` for drag and drop. Nothing else of Electron or
 * Node reaches the page.
 */
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron';
import {
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
  pathForFile: (file: File): string => webUtils.getPathForFile(file),
});
