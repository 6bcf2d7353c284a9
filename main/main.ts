/**
 * Electron main process: one secure window, the custom schemes, the menu, and the IPC handlers
 * that implement app/contract.ts.
 */
import { app, BrowserWindow, dialog, ipcMain, Menu, net, safeStorage, session, shell } from 'electron';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DROP_GRANT_CHANNEL, eventChannel, type EventName, type Events, type Handlers } from '../app/contract.js';
import { hardenContents, hardenSession, openExternalLink, windowWebPreferences } from './hardening.js';
import { registerHandlers, StudioError, trustedOrigin, type CallContext } from './ipc.js';
import { Library } from './library.js';
import { HubMain } from './hub.js';
import { buildMenu } from './menu.js';
import { netFetch } from './net-fetch.js';
import { makeDropGrantListener, openGrantedPaths, PathGrants } from './path-grants.js';
import { readGrantedSessionFile, splitOpenedPaths } from './session-files.js';
import { APP_ORIGIN, handleAppProtocol, handleModelProtocol, registerSchemes } from './protocols.js';

if (process.argv.includes('--version')) {
  process.stdout.write(`${app.getVersion()}\n`);
  app.exit(0);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const distDir = path.resolve(here, '..');
const rendererDir = path.join(distDir, 'renderer');
const preloadPath = path.join(distDir, 'preload', 'preload.cjs');
const bundledModelsDir = app.isPackaged
  ? path.join(process.resourcesPath, 'models')
  : path.join(app.getAppPath(), 'resources', 'models');

// WebGPU: Chromium on Linux still keeps it behind these switches.
if (process.platform === 'linux') {
  app.commandLine.appendSwitch('enable-unsafe-webgpu');
  app.commandLine.appendSwitch('enable-features', 'Vulkan');
}

registerSchemes();
const library = new Library(bundledModelsDir, app.getPath('userData'));
const grants = new PathGrants();
const isTrusted = trustedOrigin(APP_ORIGIN);
let mainWindow: BrowserWindow | null = null;
const hub = new HubMain({
  userData: app.getPath('userData'),
  fetch: netFetch((options) => net.request(options)),
  env: process.env,
  safeStorage,
  platform: process.platform,
  openModel: async (target) => {
    const entry = await library.open(target);
    send('modelsChanged', await library.list());
    return entry.id;
  },
  emit: (job) => send('hubJob', job),
  chooseFolder: async () => {
    const options: Electron.OpenDialogOptions = { title: 'Models folder', properties: ['openDirectory', 'createDirectory'] };
    const result = mainWindow ? await dialog.showOpenDialog(mainWindow, options) : await dialog.showOpenDialog(options);
    return result.canceled ? null : (result.filePaths[0] ?? null);
  },
});

/** Paths given on the command line (relative to `cwd`): everything after the app (or `electron .`) that is no switch. */
function pathsFromArgv(argv: string[], cwd = process.cwd()): string[] {
  return argv
    .slice(app.isPackaged ? 1 : 2)
    .filter((a) => a && !a.startsWith('-') && a !== '.')
    .map((a) => path.resolve(cwd, a));
}

function send<E extends EventName>(event: E, payload: Events[E]): void {
  mainWindow?.webContents.send(eventChannel(event), payload);
}

/** Paths the OS handed over go to the window as grants, which it may use once to open them: models, or sessions and traces. */
async function openPaths(paths: string[]): Promise<void> {
  if (paths.length === 0 || !mainWindow) return;
  const { models, sessions } = await splitOpenedPaths(paths);
  if (!mainWindow) return;
  const owner = mainWindow.webContents.id;
  if (models.length) send('openPaths', models.map((p) => grants.grant(p, owner, 'os')));
  if (sessions.length) send('openSessionFiles', sessions.map((p) => grants.grant(p, owner, 'os')));
}

const handlers: Handlers<CallContext> = {
  getAppInfo: () => ({
    name: 'Mamba Studio',
    version: app.getVersion(),
    shell: 'desktop',
    versions: { electron: process.versions.electron, chrome: process.versions.chrome, node: process.versions.node },
    platform: process.platform,
  }),
  listModels: () => library.list(),
  openModelDialog: async () => {
    const options: Electron.OpenDialogOptions = {
      title: 'Open model',
      properties: ['openFile', 'openDirectory'],
      filters: [
        { name: 'Models', extensions: ['safetensors', 'gguf', 'bin', 'json'] },
        { name: 'All files', extensions: ['*'] },
      ],
    };
    const result = mainWindow ? await dialog.showOpenDialog(mainWindow, options) : await dialog.showOpenDialog(options);
    const chosen = result.filePaths[0];
    if (result.canceled || !chosen) return null;
    const entry = await library.open(chosen);
    send('modelsChanged', await library.list());
    return entry;
  },
  openModelPaths: async (ctx, tokens) => {
    try {
      return await openGrantedPaths(grants, (p) => library.open(p))(ctx, tokens);
    } finally {
      send('modelsChanged', await library.list());
    }
  },
  getNotices: () => library.list().then(() => library.notices.splice(0)),
  readSessionFile: readGrantedSessionFile(grants),
  removeModel: async (_ctx, id) => {
    if (!(await library.remove(id))) throw new StudioError('not-found', `No model with id ${id} in the library (bundled models cannot be removed)`);
    const list = await library.list();
    send('modelsChanged', list);
    return list;
  },
  hubLookup: (_ctx, input) => hub.lookup(input),
  hubSearch: (_ctx, query) => hub.search(query),
  hubPlan: (_ctx, repo, revision, choiceId, adapter) => hub.plan(repo, revision, choiceId, adapter),
  hubDownload: (_ctx, repo, revision, choiceId) => hub.download(repo, revision, choiceId),
  hubJobs: () => hub.list(),
  hubPause: (_ctx, id) => hub.pause(id),
  hubResume: (_ctx, id) => hub.resume(id),
  hubCancel: (_ctx, id) => hub.cancel(id),
  hubSettings: () => hub.settings(),
  hubSetToken: (_ctx, token) => hub.setToken(token),
  hubChooseModelsFolder: () => hub.chooseModelsFolder(),
};

function createWindow(): BrowserWindow {
  const window = new BrowserWindow({
    width: 1400,
    height: 900,
    minWidth: 800,
    minHeight: 500,
    title: 'Mamba Studio',
    show: false,
    backgroundColor: '#111318',
    webPreferences: windowWebPreferences(preloadPath, app.isPackaged),
  });
  window.once('ready-to-show', () => window.show());
  window.on('closed', () => {
    mainWindow = null;
  });
  void window.loadURL(`${APP_ORIGIN}/index.html`);
  return window;
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', (_event, argv, workingDirectory) => {
    if (mainWindow) {
      if (mainWindow.isMinimized()) mainWindow.restore();
      mainWindow.focus();
    }
    void openPaths(pathsFromArgv(argv, workingDirectory));
  });

  // macOS "open with" / file associations.
  const pendingOpen: string[] = [];
  app.on('open-file', (event, file) => {
    event.preventDefault();
    if (mainWindow) void openPaths([file]);
    else pendingOpen.push(file);
  });

  // Every web contents: no navigation away from the app, no webviews, no new windows; https
  // links open in the browser after the user confirms them (main/hardening.ts).
  app.on('web-contents-created', (_event, contents) => {
    hardenContents(contents, APP_ORIGIN, (url) => {
      const window = BrowserWindow.fromWebContents(contents) ?? mainWindow;
      const confirm = (prompt: Electron.MessageBoxOptions) => (window ? dialog.showMessageBox(window, prompt) : dialog.showMessageBox(prompt));
      void openExternalLink(url, confirm, (u) => shell.openExternal(u));
    });
  });

  // Running downloads are paused (their partial files kept for the next start) before quitting.
  let quitting = false;
  app.on('before-quit', (event) => {
    if (quitting) return;
    event.preventDefault();
    quitting = true;
    void hub.shutdown().finally(() => app.quit());
  });

  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });

  void app.whenReady().then(() => {
    hardenSession(session.defaultSession);
    handleAppProtocol(rendererDir);
    handleModelProtocol((id) => library.served(id));
    registerHandlers(ipcMain, handlers, isTrusted);
    ipcMain.handle(DROP_GRANT_CHANNEL, makeDropGrantListener(grants, isTrusted));
    Menu.setApplicationMenu(buildMenu((command) => send('menuCommand', command), () => mainWindow, !app.isPackaged));
    mainWindow = createWindow();
    const initial = [...pathsFromArgv(process.argv), ...pendingOpen];
    mainWindow.webContents.once('did-finish-load', () => void openPaths(initial));
    app.on('activate', () => {
      if (BrowserWindow.getAllWindows().length === 0) mainWindow = createWindow();
    });
  });
}
