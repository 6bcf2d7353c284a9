/**
 * Renders renderer/icon.svg to build-resources/icon.png (1024×1024) with headless Chromium.
 * electron-builder makes the macOS .icns and Windows .ico from that PNG.
 *   node tooling/make-icon.js
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '..');
const svg = readFileSync(path.join(root, 'renderer/icon.svg'), 'utf8');
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1024, height: 1024 } });
await page.setContent(`<html><body style="margin:0;background:transparent">${svg.replace('<svg ', '<svg width="1024" height="1024" ')}</body></html>`);
await page.screenshot({ path: path.join(root, 'build-resources/icon.png'), omitBackground: true });
await browser.close();
