import type { StudioApi } from '../../app/contract';

declare global {
  interface Window {
    /** Set by the desktop preload; absent in web mode. */
    studio?: StudioApi;
    studioFiles?: { pathForFile(file: File): string };
  }
  /** package.json version, injected at build time. */
  const __APP_VERSION__: string;
}
export {};
