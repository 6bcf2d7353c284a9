/**
 * The download engine's file system on disk (app/hub/download.ts DownloadFs), rooted at a models
 * folder. `statfs` is injectable so that tests can make the disk look full.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, statfs as nodeStatfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DownloadFs } from '../hub/download.js';

export type StatFs = (dir: string) => Promise<{ bavail: number | bigint; bsize: number | bigint }>;

export function nodeDownloadFs(root: string, statfs: StatFs = (dir) => nodeStatfs(dir)): DownloadFs {
  const abs = (rel: string) => {
    const full = path.resolve(root, ...rel.split('/').filter(Boolean));
    const inside = path.relative(root, full);
    if (inside.startsWith('..') || path.isAbsolute(inside)) throw new Error(`${rel}: outside the models folder`);
    return full;
  };
  return {
    async size(rel) {
      const s = await stat(abs(rel)).catch(() => null);
      return s?.isFile() ? s.size : null;
    },
    async readText(rel) {
      return readFile(abs(rel), 'utf8').catch(() => null);
    },
    async writeText(rel, text) {
      const file = abs(rel);
      await mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, file);
    },
    async openPartial(rel) {
      const file = abs(rel);
      await mkdir(path.dirname(file), { recursive: true });
      const handle = await open(file, 'a+').then(async (h) => {
        await h.close();
        return open(file, 'r+');
      });
      return {
        async write(bytes, position) {
          let written = 0;
          while (written < bytes.length) {
            const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
            written += bytesWritten;
          }
        },
        close: () => handle.close(),
      };
    },
    async hash(rel, kind) {
      const file = abs(rel);
      const hash = createHash(kind === 'sha256' ? 'sha256' : 'sha1');
      if (kind === 'git-sha1') hash.update(`blob ${(await stat(file)).size}\0`);
      for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
      return hash.digest('hex');
    },
    async rename(from, to) {
      const target = abs(to);
      await mkdir(path.dirname(target), { recursive: true });
      await rename(abs(from), target);
    },
    async remove(rel) {
      await rm(abs(rel), { force: true });
    },
    async freeBytes(rel) {
      let dir = abs(rel);
      for (;;) {
        const s = await stat(dir).catch(() => null);
        if (s?.isDirectory()) break;
        const parent = path.dirname(dir);
        if (parent === dir) return null;
        dir = parent;
      }
      const s = await statfs(dir).catch(() => null);
      return s ? Number(s.bavail) * Number(s.bsize) : null;
    },
    location(rel) {
      return abs(rel);
    },
  };
}
