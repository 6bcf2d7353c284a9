/**
 * Electron hardening (issue 14, item 8), on the pure decisions and installers main/main.ts uses:
 * links open only as https and only after the user confirms; every permission and device is
 * refused; no navigation away from the app; no DevTools when packaged. Plus the wiring in
 * main.ts (read as text: the Electron binary is not installed here).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import {
  externalLinkDecision,
  hardenContents,
  hardenSession,
  navigationAllowed,
  openExternalLink,
  windowWebPreferences,
  type GuardedContents,
  type PermissionSession,
} from '../../main/hardening';

const APP = 'app://studio';

describe('links the page opens', () => {
  it('only https without credentials, always through a confirmation', () => {
    expect(externalLinkDecision('https://github.com/state-spaces/mamba#readme')).toEqual({
      action: 'confirm',
      url: 'https://github.com/state-spaces/mamba#readme',
      host: 'github.com',
    });
    // A look-alike host is shown as what it is (punycode).
    expect(externalLinkDecision('https://аррӏе.com/')).toMatchObject({ action: 'confirm', host: 'xn--80ak6aa92e.com', url: 'https://xn--80ak6aa92e.com/' });
    for (const [url, reason] of [
      ['http://example.com/', 'only https links are opened (this one is http:)'],
      ['file:///etc/passwd', 'only https links are opened (this one is file:)'],
      ['javascript:alert(1)', 'only https links are opened (this one is javascript:)'],
      ['smb://host/share', 'only https links are opened (this one is smb:)'],
      ['app://studio/index.html', 'only https links are opened (this one is app:)'],
      ['https://user:secret@example.com/', 'links with credentials are not opened'],
      ['not a url', 'not a URL'],
    ] as const) {
      expect(externalLinkDecision(url), url).toEqual({ action: 'deny', reason });
    }
  });

  it('opens the URL only when the user picks "Open in Browser"', async () => {
    const openExternal = vi.fn(async () => undefined);
    const cancel = vi.fn(async () => ({ response: 1 }));
    expect(await openExternalLink('https://example.com/a', cancel, openExternal)).toBe(false);
    expect(cancel).toHaveBeenCalledWith(expect.objectContaining({ message: 'Open example.com in your browser?', detail: 'https://example.com/a', defaultId: 1, cancelId: 1 }));
    expect(openExternal).not.toHaveBeenCalled();
    const accept = vi.fn(async () => ({ response: 0 }));
    expect(await openExternalLink('https://example.com/a', accept, openExternal)).toBe(true);
    expect(openExternal).toHaveBeenCalledWith('https://example.com/a');
    const never = vi.fn(async () => ({ response: 0 }));
    expect(await openExternalLink('http://example.com/', never, openExternal)).toBe(false);
    expect(never).not.toHaveBeenCalled();
  });
});

describe('permissions', () => {
  it('refuses every permission request and check, and every device', () => {
    const installed: Record<string, (...args: never[]) => unknown> = {};
    const fake = {
      setPermissionRequestHandler: (h: never) => void (installed.request = h),
      setPermissionCheckHandler: (h: never) => void (installed.check = h),
      setDevicePermissionHandler: (h: never) => void (installed.device = h),
    } as unknown as PermissionSession;
    hardenSession(fake);
    const request = installed.request as unknown as (wc: unknown, permission: string, callback: (granted: boolean) => void) => void;
    const check = installed.check as unknown as (wc: unknown, permission: string, origin: string) => boolean;
    const device = installed.device as unknown as (details: unknown) => boolean;
    for (const permission of ['media', 'notifications', 'geolocation', 'clipboard-read', 'clipboard-sanitized-write', 'fullscreen', 'openExternal', 'fileSystem', 'display-capture', 'unknown']) {
      const callback = vi.fn();
      request(null, permission, callback);
      expect(callback, permission).toHaveBeenCalledWith(false);
      expect(check(null, permission, APP), permission).toBe(false);
    }
    expect(device({ deviceType: 'hid', origin: APP })).toBe(false);
  });
});

describe('windows and navigation', () => {
  it('keeps the renderer sandboxed and isolated, with DevTools only in development', () => {
    const packaged = windowWebPreferences('/p/preload.cjs', true);
    expect(packaged).toMatchObject({
      preload: '/p/preload.cjs', contextIsolation: true, sandbox: true, nodeIntegration: false, nodeIntegrationInWorker: false,
      webSecurity: true, allowRunningInsecureContent: false, webviewTag: false, devTools: false,
    });
    expect(windowWebPreferences('/p/preload.cjs', false).devTools).toBe(true);
  });

  it('allows navigation only within the app, and opens no window or webview', () => {
    expect(navigationAllowed('app://studio/index.html', APP)).toBe(true);
    for (const url of ['https://example.com/', 'app://studio.evil/', 'app://other/', 'file:///tmp/x.html', 'model://models/x/config.json', 'garbage']) {
      expect(navigationAllowed(url, APP), url).toBe(false);
    }
    const listeners: Record<string, (event: { preventDefault(): void }, url?: string) => void> = {};
    let windowOpen: ((d: { url: string }) => { action: 'deny' }) | null = null;
    const contents = {
      on: (event: string, listener: (event: { preventDefault(): void }, url?: string) => void) => void (listeners[event] = listener),
      setWindowOpenHandler: (handler: (d: { url: string }) => { action: 'deny' }) => void (windowOpen = handler),
    } as unknown as GuardedContents;
    const openLink = vi.fn();
    hardenContents(contents, APP, openLink);
    for (const name of ['will-navigate', 'will-redirect']) {
      const away = { preventDefault: vi.fn() };
      listeners[name]?.(away, 'https://example.com/');
      expect(away.preventDefault, name).toHaveBeenCalled();
      const inside = { preventDefault: vi.fn() };
      listeners[name]?.(inside, 'app://studio/index.html');
      expect(inside.preventDefault, name).not.toHaveBeenCalled();
    }
    const webview = { preventDefault: vi.fn() };
    listeners['will-attach-webview']?.(webview);
    expect(webview.preventDefault).toHaveBeenCalled();
    expect((windowOpen as unknown as (d: { url: string }) => unknown)({ url: 'https://example.com/' })).toEqual({ action: 'deny' });
    expect(openLink).toHaveBeenCalledWith('https://example.com/');
  });

  it('main.ts installs all of it, and opens links only through the confirmation', () => {
    const main = readFileSync(path.resolve(import.meta.dirname, '../../main/main.ts'), 'utf8');
    expect(main).toMatch(/webPreferences: windowWebPreferences\(preloadPath, app\.isPackaged\)/);
    expect(main).toMatch(/hardenSession\(session\.defaultSession\)/);
    expect(main).toMatch(/app\.on\('web-contents-created', \(_event, contents\) => \{\n\s+hardenContents\(contents, APP_ORIGIN,/);
    expect(main.match(/shell\.openExternal/g)).toEqual(['shell.openExternal']);
    expect(main).toMatch(/void openExternalLink\(url, confirm, \(u\) => shell\.openExternal\(u\)\)/);
    expect(main).toMatch(/buildMenu\([^\n]*, !app\.isPackaged\)/);
    const menu = readFileSync(path.resolve(import.meta.dirname, '../../main/menu.ts'), 'utf8');
    expect(menu).toMatch(/\.\.\.\(devTools \? \[\{ role: 'toggleDevTools' as const \}\] : \[\]\)/);
  });
});
