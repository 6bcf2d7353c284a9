/**
 * Electron hardening, as pure decisions and installers over the few Electron objects they touch
 * (typed structurally, so they run under Node in tests):
 *  - windows: context isolation, sandbox, no Node, web security, no DevTools when packaged;
 *  - navigation: only within the app's own origin; no webviews; no new windows;
 *  - links the page opens: https only, and only after the user confirms the URL shown in full;
 *  - permissions: the studio needs none (WebGPU, downloads and its own schemes need no grant),
 *    so every permission request and check is refused, and so is every device (HID, USB, serial).
 * The Electron fuses that close the binary itself (ELECTRON_RUN_AS_NODE, NODE_OPTIONS, --inspect,
 * loading the app from outside its asar) are set at packaging: electron-builder.yml.
 */
import type { Session, WebPreferences } from 'electron';
import { schemeAndHost } from './ipc.js';

export function windowWebPreferences(preload: string, isPackaged: boolean): WebPreferences {
  return {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    webviewTag: false,
    spellcheck: false,
    devTools: !isPackaged,
  };
}

/** Navigation of a studio page: only to another page of the app itself. */
export function navigationAllowed(url: string, appOrigin: string): boolean {
  return schemeAndHost(url) === appOrigin;
}

export type ExternalLinkDecision = { action: 'deny'; reason: string } | { action: 'confirm'; url: string; host: string };

/**
 * What to do with a link the page asks to open (window.open, target=_blank): only https URLs,
 * without credentials, go to the user's browser, and only after a confirmation showing where.
 */
export function externalLinkDecision(raw: string): ExternalLinkDecision {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { action: 'deny', reason: 'not a URL' };
  }
  if (url.protocol !== 'https:') return { action: 'deny', reason: `only https links are opened (this one is ${url.protocol})` };
  if (url.username || url.password) return { action: 'deny', reason: 'links with credentials are not opened' };
  if (!url.hostname) return { action: 'deny', reason: 'no host' };
  return { action: 'confirm', url: url.href, host: url.host };
}

/** The confirmation dialog's options for a link (Cancel is the default and the Escape answer). */
export function externalLinkPrompt(decision: Extract<ExternalLinkDecision, { action: 'confirm' }>) {
  return {
    type: 'question' as const,
    title: 'Open link',
    message: `Open ${decision.host} in your browser?`,
    detail: decision.url,
    buttons: ['Open in Browser', 'Cancel'],
    defaultId: 1,
    cancelId: 1,
    noLink: true,
  };
}

/** Opens `url` in the browser if the decision allows it and the user confirms; resolves to whether it did. */
export async function openExternalLink(
  raw: string,
  confirm: (prompt: ReturnType<typeof externalLinkPrompt>) => Promise<{ response: number }>,
  openExternal: (url: string) => Promise<void>,
): Promise<boolean> {
  const decision = externalLinkDecision(raw);
  if (decision.action === 'deny') return false;
  const { response } = await confirm(externalLinkPrompt(decision));
  if (response !== 0) return false;
  await openExternal(decision.url);
  return true;
}

/** Permissions the studio grants: none. */
export const GRANTED_PERMISSIONS: ReadonlySet<string> = new Set();
export const permissionAllowed = (permission: string): boolean => GRANTED_PERMISSIONS.has(permission);

/** The part of Electron's Session the permission handlers are installed on. */
export type PermissionSession = Pick<Session, 'setPermissionRequestHandler' | 'setPermissionCheckHandler' | 'setDevicePermissionHandler'>;

export function hardenSession(session: PermissionSession): void {
  session.setPermissionRequestHandler((_contents, permission, callback) => callback(permissionAllowed(permission)));
  session.setPermissionCheckHandler((_contents, permission) => permissionAllowed(permission));
  session.setDevicePermissionHandler(() => false);
}

/** The part of Electron's WebContents the navigation guards are installed on. */
export interface GuardedContents {
  on(event: 'will-navigate' | 'will-redirect', listener: (event: { preventDefault(): void }, url: string) => void): unknown;
  on(event: 'will-attach-webview', listener: (event: { preventDefault(): void }) => void): unknown;
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' }): void;
}

export function hardenContents(contents: GuardedContents, appOrigin: string, openLink: (url: string) => void): void {
  const guard = (event: { preventDefault(): void }, url: string) => {
    if (!navigationAllowed(url, appOrigin)) event.preventDefault();
  };
  contents.on('will-navigate', guard);
  contents.on('will-redirect', guard);
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    openLink(url);
    return { action: 'deny' };
  });
}
