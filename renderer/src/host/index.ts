/**
 * The renderer's view of its host: the desktop preload's `window.studio`, or web mode's
 * in-page implementation. Either way the UI sees the same StudioApi.
 */
import type { ModelEntry, StudioApi } from '../../../app/contract';
import { createWebStudio } from './web-studio';

export interface Host {
  api: StudioApi;
  shell: 'desktop' | 'web';
  /** Opens dropped files: by path on the desktop, in memory in web mode. */
  openDropped(files: File[]): Promise<ModelEntry[]>;
}

export function createHost(): Host {
  const desktop = window.studio;
  const pathForFile = window.studioFiles?.pathForFile;
  if (desktop && pathForFile) {
    return {
      api: desktop,
      shell: 'desktop',
      openDropped: (files) => desktop.openModelPaths(files.map((f) => pathForFile(f)).filter(Boolean)),
    };
  }
  const web = createWebStudio();
  return { api: web, shell: 'web', openDropped: async (files) => [await web.openFiles(files)] };
}
