import { app, dialog, Menu, type BrowserWindow, type MenuItemConstructorOptions } from 'electron';
import type { MenuCommand } from '../app/contract.js';

export function showAbout(window: BrowserWindow | null): void {
  const detail = [
    `Version ${app.getVersion()}`,
    `Electron ${process.versions.electron ?? '?'} · Chromium ${process.versions.chrome ?? '?'} · Node ${process.versions.node}`,
    'Run Mamba selective state space models on the GPU through WebGPU, and see what the selection mechanism keeps and filters.',
  ].join('\n');
  const options = { type: 'info' as const, title: 'About Mamba Studio', message: 'Mamba Studio', detail, buttons: ['OK'] };
  void (window ? dialog.showMessageBox(window, options) : dialog.showMessageBox(options));
}

/** `devTools`: whether View offers Toggle Developer Tools (not in packaged builds). */
export function buildMenu(send: (command: MenuCommand) => void, getWindow: () => BrowserWindow | null, devTools: boolean): Menu {
  const isMac = process.platform === 'darwin';
  const template: MenuItemConstructorOptions[] = [
    ...(isMac ? [{ role: 'appMenu' as const }] : []),
    {
      label: '&File',
      submenu: [
        { label: 'Open Model…', accelerator: 'CmdOrCtrl+O', click: () => send('open-model') },
        { label: 'Open Trace or Session…', accelerator: 'CmdOrCtrl+Shift+O', click: () => send('open-session') },
        { label: 'Save Session', accelerator: 'CmdOrCtrl+S', click: () => send('save-session') },
        { type: 'separator' },
        isMac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: '&View',
      submenu: [
        { label: 'Toggle Sidebar', accelerator: 'CmdOrCtrl+B', click: () => send('toggle-sidebar') },
        { type: 'separator' },
        { role: 'reload' },
        ...(devTools ? [{ role: 'toggleDevTools' as const }] : []),
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    { role: 'windowMenu' },
    {
      role: 'help',
      submenu: [{ label: 'About Mamba Studio', click: () => showAbout(getWindow()) }],
    },
  ];
  return Menu.buildFromTemplate(template);
}
