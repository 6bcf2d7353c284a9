/**
 * The CLI's `pull <repo> [--file F] [--revision R] [--dir DIR] [--endpoint URL]`: the same lookup
 * and download as the app (app/hub), into DIR (default: the app's models folder), progress on
 * stderr, the model's local path as the last line of stdout. A token comes from HF_TOKEN.
 *
 * Proxies: the environment's (HTTP_PROXY / HTTPS_PROXY / NO_PROXY) through app/node/proxy-fetch.ts
 * (Node 20's fetch ignores them); the desktop app goes through Chromium's network stack, which
 * follows the system's and the environment's proxies.
 */
import path from 'node:path';
import { HubClient, hubEndpoint } from '../hub/client.js';
import { downloadFiles, type DownloadProgress } from '../hub/download.js';
import { formatBytes, HubError } from '../hub/errors.js';
import type { HubFetch } from '../hub/http.js';
import { lookupRepo, modelTarget, pickChoice } from '../hub/pull.js';
import { parseHubRef } from '../hub/repo-ref.js';
import { appDataDir, modelsDir } from './app-data.js';
import { nodeDownloadFs, type StatFs } from './hub-fs.js';
import { checkProxy, envProxyFetch, proxyFor, shownProxy } from './proxy-fetch.js';

export { proxyFor } from './proxy-fetch.js';

export const PULL_USAGE = `  pull <repo or URL> [--file NAME] [--revision REV] [--dir DIR] [--endpoint URL]
                        download a model from the Hugging Face Hub (a repo id such as state-spaces/mamba-130m-hf,
                        or a Hub URL) into DIR (default: the app's models folder), in the hub cache layout
                        (models--owner--name/snapshots/<commit>/); resumes a partial download, checks each
                        file's sha256 and the free space first; --file picks a GGUF quant (or any file of a
                        checkpoint); token from HF_TOKEN; endpoint from --endpoint, else HF_ENDPOINT; prints
                        the model's local path on the last line`;

export interface PullIo {
  env: Record<string, string | undefined>;
  stdout(text: string): void;
  stderr(text: string): void;
  fetch?: HubFetch;
  statfs?: StatFs;
  /** Is stderr a terminal (progress redrawn in place) or a log (a line every few seconds)? */
  tty?: boolean;
  /** Download tuning (tests). */
  partMinBytes?: number;
}


const seconds = (s: number | null) => (s === null ? '?' : s < 90 ? `${Math.ceil(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

export function progressLine(p: DownloadProgress): string {
  const current = p.files.find((f) => f.state === 'downloading' || f.state === 'verifying');
  const pct = p.total > 0 ? ((100 * p.bytes) / p.total).toFixed(1) : '100.0';
  const file = current ? `${current.path}${current.state === 'verifying' ? ' (checking)' : ''}: ` : '';
  return `${file}${formatBytes(p.bytes)} / ${formatBytes(p.total)} (${pct}%)  ${formatBytes(p.speed)}/s  ETA ${seconds(p.etaSeconds)}`;
}

function parseArgs(args: string[]): { target: string; opts: Map<string, string> } {
  const opts = new Map<string, string>();
  let target: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg.startsWith('--')) {
      const name = arg.slice(2);
      if (!['file', 'revision', 'dir', 'endpoint'].includes(name)) throw new HubError('bad-input', `unknown argument "${arg}"`);
      const value = args[++i];
      if (value === undefined || value.startsWith('--')) throw new HubError('bad-input', `${arg} needs a value`);
      opts.set(name, value);
    } else if (target === undefined) target = arg;
    else throw new HubError('bad-input', `unexpected argument "${arg}" (one repo at a time)`);
  }
  if (target === undefined) throw new HubError('bad-input', 'pull needs a repo id or Hub URL, e.g. pull state-spaces/mamba-130m-hf');
  return { target, opts };
}

/** Runs `pull`; returns the exit status (0, or 1 with `error: …` on stderr). */
export async function pullCommand(args: string[], io: PullIo): Promise<number> {
  try {
    const { target, opts } = parseArgs(args);
    const endpoint = opts.get('endpoint') ?? hubEndpoint(io.env);
    const ref = parseHubRef(target, endpoint);
    const revision = opts.get('revision') ?? ref.revision;
    const proxy = proxyFor(endpoint, io.env);
    if (proxy) {
      checkProxy(proxy);
      io.stderr(`through the proxy ${shownProxy(proxy)}\n`);
    }
    const token = io.env.HF_TOKEN?.trim() || io.env.HUGGING_FACE_HUB_TOKEN?.trim() || null;
    const client = new HubClient({ fetch: envProxyFetch(io.env, io.fetch ?? (fetch as unknown as HubFetch)), endpoint, token });
    const dir = path.resolve(opts.get('dir') ?? (await modelsDir(appDataDir())));
    const view = await lookupRepo(client, { ...ref, revision });
    const file = opts.get('file');
    const choice = pickChoice(view, file);
    io.stderr(`${view.repo} @ ${view.commit.slice(0, 12)}: ${choice.label}, ${choice.files.length} files, ${formatBytes(choice.bytes)}${view.license ? `, license ${view.license}` : ''} → ${dir}\n`);
    let last = 0;
    const fs = nodeDownloadFs(dir, io.statfs);
    await downloadFiles(client, fs, { repo: view.repo, revision, commit: view.commit, files: choice.files }, {
      ...(io.partMinBytes ? { partMinBytes: io.partMinBytes } : {}),
      progressIntervalMs: io.tty ? 200 : 0,
      onProgress: (p) => {
        const now = performance.now();
        if (io.tty) io.stderr(`\r${progressLine(p)}\x1b[K`);
        else if (now - last >= 5000 || p.bytes === p.total) {
          last = now;
          io.stderr(`${progressLine(p)}\n`);
        }
      },
    });
    if (io.tty) io.stderr('\n');
    io.stdout(`${fs.location(modelTarget(view, choice))}\n`);
    return 0;
  } catch (error) {
    if (io.tty) io.stderr('\n');
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`error: ${message.split('\n')[0]}\n`);
    return 1;
  }
}
