/** Chromium for e2e tests: CHROMIUM_PATH, else /usr/bin/chromium, else Playwright's own browser. */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_FLAGS = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export function findChromium(): { path: string } | { reason: string } {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean) as string[];
  for (const c of candidates) if (existsSync(c)) return { path: c };
  try {
    const own = chromium.executablePath();
    if (own && existsSync(own)) return { path: own };
  } catch {
    // playwright-core has no browser of its own unless `npx playwright install` ran
  }
  return { reason: `no Chromium found (tried CHROMIUM_PATH, ${candidates.join(', ')}, Playwright's browser); install Debian's chromium` };
}

export async function launchChromium(path: string): Promise<Browser> {
  return chromium.launch({ executablePath: path, headless: true, args: CHROMIUM_FLAGS });
}
