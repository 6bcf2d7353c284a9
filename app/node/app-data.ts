/**
 * Where the desktop app keeps its data when the CLI needs it: Electron's `userData` folder for
 * the product name (Linux: $XDG_CONFIG_HOME or ~/.config; macOS: ~/Library/Application Support;
 * Windows: %APPDATA%), the hub settings file in it, and the default models folder under it.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';

export const PRODUCT_NAME = 'Mamba Studio';
/** The desktop app's hub settings (main/hub.ts): the models folder the user chose. */
export const HUB_SETTINGS_FILE = 'hub-settings.json';

export function appDataDir(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  if (platform === 'win32') return path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), PRODUCT_NAME);
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', PRODUCT_NAME);
  return path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), PRODUCT_NAME);
}

/** The models folder under an app data folder, unless the hub settings name another. */
export async function modelsDir(dataDir: string): Promise<string> {
  try {
    const settings = JSON.parse(await readFile(path.join(dataDir, HUB_SETTINGS_FILE), 'utf8')) as { modelsDir?: unknown };
    if (typeof settings.modelsDir === 'string' && path.isAbsolute(settings.modelsDir)) return settings.modelsDir;
  } catch {
    /* no settings yet, or unreadable: the default */
  }
  return path.join(dataDir, 'models');
}
