/**
 * The renderer's view of its host: the desktop preload's `window.studio`, or web mode's
 * in-page implementation. Either way the UI sees the same StudioApi.
 */
import type { ModelEntry, StudioApi } from '../../../app/contract';
import type { ModelSource } from '../../../app/engine/protocol';
import { createWebStudio } from './web-studio';

export interface Host {
  api: StudioApi;
  shell: 'desktop' | 'web';
  /** Opens dropped files: by path on the desktop, in memory in web mode. */
  openDropped(files: File[]): Promise<ModelEntry[]>;
  /** Where the engine worker reads this model's files from. */
  modelSource(entry: ModelEntry): ModelSource;
}

/** A URL source, made absolute here (the worker resolves relative URLs against its own script). */
const urlSource = (entry: ModelEntry): ModelSource => ({
  kind: 'url',
  baseUrl: new URL(entry.baseUrl, window.location.href).href,
  files: entry.files,
});

export function createHost(): Host {
  const desktop = window.studio;
  const grantForFile = window.studioFiles?.grantForFile;
  if (desktop && grantForFile) {
    return {
      api: desktop,
      shell: 'desktop',
      // Each dropped File becomes a path grant in the preload; the page never sees a path.
      openDropped: async (files) => desktop.openModelPaths(await Promise.all(files.map((f) => grantForFile(f)))),
      modelSource: urlSource,
    };
  }
  const web = createWebStudio();
  return {
    api: web,
    shell: 'web',
    openDropped: async (files) => [await web.openFiles(files)],
    modelSource: (entry) => {
      const files = web.filesOf(entry.id);
      return files ? { kind: 'files', folder: '', files } : urlSource(entry);
    },
  };
}
