import type { StudioApi } from '../../app/contract';

declare global {
  interface Window {
    /** Set by the desktop preload; absent in web mode. */
    studio?: StudioApi;
    /** Desktop: a dropped File as a path grant for `studio.openModelPaths` (main/path-grants.ts). */
    studioFiles?: { grantForFile(file: File): Promise<string> };
  }
  /** package.json version, injected at build time. */
  const __APP_VERSION__: string;
}
export {};
