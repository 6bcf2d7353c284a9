/**
 * The download engine: a model choice's files from the Hub into the hub cache layout
 * (`models--owner--name/snapshots/<commit>/<file>`), through an injected file system (Node's disk:
 * app/node/hub-fs.ts; the browser's memory: renderer/src/hub/memory-fs.ts).
 *
 * Each file is fetched into `models--owner--name/blobs/<hash>.incomplete` in N ranged parts at
 * once; a JSON sidecar beside it records each part's progress, so a dropped connection is resumed
 * with Range from where the bytes stopped (bounded retries), and so is the next run after a pause,
 * a crash or a restart. The bytes are written before the sidecar counts them: the sidecar may lag,
 * never lead. A finished file is checked against the Hub's hash (the LFS sha256, else the git blob
 * id that is its ETag) and only then moved into the snapshot folder; a corrupt one is deleted and
 * the error names it. The free space is checked before the first byte; cancelling deletes the
 * partial files, pausing keeps them.
 */
import { abortError, type HubClient, type HubTreeEntry } from './client.js';
import { formatBytes, HubError, PAUSE } from './errors.js';
import { sleep, type HubSignal } from './http.js';

export interface PartialFile {
  write(bytes: Uint8Array, position: number): Promise<void>;
  close(): Promise<void>;
}

/** A file system rooted at the models folder; paths are relative, with `/`. */
export interface DownloadFs {
  /** Size of a regular file, or null when there is none. */
  size(path: string): Promise<number | null>;
  readText(path: string): Promise<string | null>;
  /** Replaces a small file's text whole (written beside it, then renamed). */
  writeText(path: string, text: string): Promise<void>;
  /** Opens a file for positional writes, creating it and its folders when missing (never truncating). */
  openPartial(path: string): Promise<PartialFile>;
  /** The file's hash in lowercase hex: sha256 of its bytes, or git's blob id (sha1 of "blob <size>\0" + bytes). */
  hash(path: string, kind: 'sha256' | 'git-sha1'): Promise<string>;
  /** Moves a file, creating the target's folders; replaces a file already there. */
  rename(from: string, to: string): Promise<void>;
  /** Deletes a file; no error when there is none. */
  remove(path: string): Promise<void>;
  /** Free bytes for new files at `path` (or its nearest existing folder); null when unknown. */
  freeBytes(path: string): Promise<number | null>;
  /** The path as people see it (absolute on disk, or a name in the browser). */
  location(path: string): string;
}

export interface DownloadRequest {
  repo: string;
  /** The revision asked for (a branch, tag or commit). */
  revision: string;
  /** The commit it points at (model info's sha): files are fetched at this commit. */
  commit: string;
  files: readonly HubTreeEntry[];
}

export interface DownloadOptions {
  signal?: HubSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** Parallel ranged requests per file (default 4). */
  parts?: number;
  /** Smallest part (default 8 MiB): a file smaller than two of them is fetched in one. */
  partMinBytes?: number;
  /** Failed requests in a row, without a byte between them, before a part gives up (default 5). */
  maxRetries?: number;
  /** Back-off after the first failure (default 500 ms), growing linearly. */
  retryDelayMs?: number;
  progressIntervalMs?: number;
  sidecarIntervalMs?: number;
  /** HEAD each file first (size and commit checked against the tree); off where redirects are followed by the browser. */
  head?: boolean;
  now?: () => number;
}

export type FileState = 'waiting' | 'downloading' | 'verifying' | 'done';

export interface FileProgress {
  path: string;
  bytes: number;
  total: number;
  state: FileState;
  /** Bytes per second over the last few seconds (0 when idle). */
  speed: number;
  /** Seconds left at that speed, or null. */
  etaSeconds: number | null;
}

export interface DownloadProgress {
  repo: string;
  commit: string;
  files: FileProgress[];
  bytes: number;
  total: number;
  speed: number;
  etaSeconds: number | null;
}

export interface DownloadResult {
  /** The snapshot folder, relative to the models folder. */
  folder: string;
  /** Its location (absolute on disk). */
  location: string;
  files: string[];
}

interface Part {
  start: number;
  /** Inclusive. */
  end: number;
  done: number;
}

interface Sidecar {
  version: 1;
  repo: string;
  commit: string;
  file: string;
  size: number;
  sha256?: string;
  oid: string;
  parts: Part[];
}

/** `models--owner--name`: the hub cache's folder of a repo. */
export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

export function snapshotFolder(repo: string, commit: string): string {
  return `${repoFolderName(repo)}/snapshots/${commit}`;
}

/** Where a file's bytes gather until they are checked: `blobs/<sha256 or git id>.incomplete`. */
export function partialPath(repo: string, commit: string, file: HubTreeEntry): string {
  const key = file.sha256 ?? (/^[0-9a-f]{40}$/.test(file.oid) ? file.oid : `${commit}-${file.path.replace(/[^A-Za-z0-9._-]/g, '_')}`);
  return `${repoFolderName(repo)}/blobs/${key}.incomplete`;
}

export const sidecarPath = (partial: string): string => `${partial}.json`;

/** Splits [0, size) into up to `parts` parts of at least `minBytes` (one part for a small or empty file). */
export function splitParts(size: number, parts: number, minBytes: number): Part[] {
  const n = Math.max(1, Math.min(parts, Math.floor(size / Math.max(1, minBytes))));
  const step = Math.ceil(size / n);
  const out: Part[] = [];
  for (let start = 0; start < size || out.length === 0; start += step) {
    out.push({ start, end: Math.min(size, start + step) - 1, done: 0 });
    if (size === 0) break;
  }
  return out;
}

function readSidecar(text: string | null, expect: Omit<Sidecar, 'parts' | 'version'>, partialSize: number | null): Part[] | null {
  if (text === null || partialSize === null) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  const s = raw as Partial<Sidecar>;
  if (s.version !== 1 || s.repo !== expect.repo || s.file !== expect.file || s.size !== expect.size || s.oid !== expect.oid || s.sha256 !== expect.sha256) return null;
  if (!Array.isArray(s.parts) || s.parts.length === 0 || s.parts.length > 64) return null;
  let next = 0;
  const parts: Part[] = [];
  for (const p of s.parts as unknown[]) {
    const { start, end, done } = (p ?? {}) as Part;
    if (![start, end, done].every((x) => Number.isSafeInteger(x)) || start !== next || end < start - 1 || done < 0 || done > end - start + 1) return null;
    // Never trust the sidecar past the bytes the file holds.
    parts.push({ start, end, done: Math.max(0, Math.min(done, partialSize - start)) });
    next = end + 1;
  }
  return next === expect.size || (expect.size === 0 && next === 0) ? parts : null;
}

const partLength = (p: Part) => p.end - p.start + 1;

/** Bytes per second over a sliding window of samples. */
class Rate {
  private samples: [number, number][] = [];
  private total = 0;
  add(now: number, bytes: number): void {
    this.total += bytes;
    this.samples.push([now, this.total]);
    while (this.samples.length > 2 && now - (this.samples[0] as [number, number])[0] > 5000) this.samples.shift();
  }
  speed(now: number): number {
    const first = this.samples[0];
    if (!first || now - first[0] < 1) return 0;
    const last = this.samples[this.samples.length - 1] as [number, number];
    if (now - last[0] > 5000) return 0;
    return ((last[1] - first[1]) * 1000) / (now - first[0]);
  }
}

/**
 * Downloads the request's files into `snapshots/<commit>/`, skipping files already there with the
 * right size. Rejects with a HubError: 'disk-space' before any byte, 'integrity' naming a corrupt
 * file (not kept), 'paused' (partial files kept for the next run) or 'cancelled' (partial files
 * deleted), or the client's errors (gated, not-found, rate-limited, network after the retries).
 */
export async function downloadFiles(client: HubClient, fs: DownloadFs, request: DownloadRequest, options: DownloadOptions = {}): Promise<DownloadResult> {
  const { repo, commit } = request;
  const signal = options.signal;
  const now = options.now ?? (() => performance.now());
  const folder = snapshotFolder(repo, commit);
  const files = request.files;
  const progress: FileProgress[] = files.map((f) => ({ path: f.path, bytes: 0, total: f.size, state: 'waiting', speed: 0, etaSeconds: null }));
  const rates = files.map(() => new Rate());
  const totalRate = new Rate();
  let lastEmit = -Infinity;
  let trailing: unknown = null;
  const interval = options.progressIntervalMs ?? 200;
  const emit = (force: boolean) => {
    const t = now();
    if (!options.onProgress) return;
    if (!force && t - lastEmit < interval) {
      // Throttled: the last bytes are still reported, once the interval is over (a stalled download shows where it stopped).
      trailing ??= setTimeout(() => {
        trailing = null;
        emit(true);
      }, interval - (t - lastEmit));
      return;
    }
    if (trailing !== null) clearTimeout(trailing);
    trailing = null;
    lastEmit = t;
    const list = progress.map((p, i) => {
      const speed = p.state === 'downloading' ? (rates[i] as Rate).speed(t) : 0;
      return { ...p, speed, etaSeconds: speed > 0 ? (p.total - p.bytes) / speed : null };
    });
    const bytes = list.reduce((s, p) => s + p.bytes, 0);
    const total = list.reduce((s, p) => s + p.total, 0);
    const speed = totalRate.speed(t);
    options.onProgress({ repo, commit, files: list, bytes, total, speed, etaSeconds: speed > 0 ? (total - bytes) / speed : null });
  };

  // What is there already: finished files, and partial ones with a usable sidecar.
  const plans: { file: HubTreeEntry; partial: string; parts: Part[] | null; finished: boolean }[] = [];
  for (const [i, file] of files.entries()) {
    const partial = partialPath(repo, commit, file);
    const finished = (await fs.size(`${folder}/${file.path}`)) === file.size;
    const parts = finished
      ? null
      : readSidecar(await fs.readText(sidecarPath(partial)), { repo, commit, file: file.path, size: file.size, oid: file.oid, ...(file.sha256 ? { sha256: file.sha256 } : {}) }, await fs.size(partial));
    const have = finished ? file.size : (parts ?? []).reduce((s, p) => s + p.done, 0);
    const entry = progress[i] as FileProgress;
    entry.bytes = have;
    if (finished) entry.state = 'done';
    plans.push({ file, partial, parts, finished });
  }
  const need = plans.reduce((s, p) => s + (p.finished ? 0 : p.file.size - (p.parts ?? []).reduce((d, x) => d + x.done, 0)), 0);
  const free = await fs.freeBytes(repoFolderName(repo));
  if (free !== null && need > free) {
    throw new HubError(
      'disk-space',
      `Not enough free disk space in ${fs.location('')}: ${repo} needs ${formatBytes(need)} more, only ${formatBytes(free)} free. Free some space or choose another models folder.`,
    );
  }
  emit(true);

  const cleanup = async () => {
    for (const p of plans) {
      if (p.finished) continue;
      await fs.remove(p.partial);
      await fs.remove(sidecarPath(p.partial));
    }
  };

  try {
    for (const [i, plan] of plans.entries()) {
      if (plan.finished) continue;
      await downloadOne(client, fs, request, plan, {
        ...options,
        ...(signal ? { signal } : {}),
        onBytes: (n) => {
          const t = now();
          (progress[i] as FileProgress).bytes += n;
          (rates[i] as Rate).add(t, n);
          totalRate.add(t, n);
          emit(false);
        },
        onState: (state, bytes) => {
          const p = progress[i] as FileProgress;
          p.state = state;
          if (bytes !== undefined) p.bytes = bytes;
          emit(true);
        },
        now,
      });
      plan.finished = true;
    }
  } catch (error) {
    if (trailing !== null) clearTimeout(trailing);
    trailing = null;
    if (error instanceof HubError && error.kind === 'cancelled') await cleanup();
    throw error;
  }
  if (request.revision !== commit && /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(request.revision) && !request.revision.split('/').includes('..')) {
    await fs.writeText(`${repoFolderName(repo)}/refs/${request.revision}`, commit);
  }
  emit(true);
  return { folder, location: fs.location(folder), files: files.map((f) => f.path) };
}

interface OneOptions extends DownloadOptions {
  onBytes(n: number): void;
  onState(state: FileState, bytes?: number): void;
  now(): number;
}

async function downloadOne(
  client: HubClient,
  fs: DownloadFs,
  request: DownloadRequest,
  plan: { file: HubTreeEntry; partial: string; parts: Part[] | null },
  options: OneOptions,
): Promise<void> {
  const { repo, commit } = request;
  const { file, partial } = plan;
  const { signal } = options;
  const what = `${file.path} of ${repo}`;
  const side = sidecarPath(partial);
  const final = `${snapshotFolder(repo, commit)}/${file.path}`;
  if (signal?.aborted) throw abortError(signal, what);
  if (options.head ?? true) {
    const head = await client.head(repo, commit, file.path, signal);
    if (head.size !== null && head.size !== file.size) {
      throw new HubError('integrity', `${what}: the Hub reports ${head.size} bytes where its file list said ${file.size}; try again later`);
    }
    if (head.commit !== null && head.commit !== commit) {
      throw new HubError('integrity', `${what}: the Hub served commit ${head.commit} for ${commit}`);
    }
  }
  let parts = plan.parts;
  if (!parts) {
    await fs.remove(partial);
    parts = splitParts(file.size, options.parts ?? 4, options.partMinBytes ?? 8 * 1024 * 1024);
  }
  const sidecar: Sidecar = { version: 1, repo, commit, file: file.path, size: file.size, oid: file.oid, ...(file.sha256 ? { sha256: file.sha256 } : {}), parts };
  let saving: Promise<void> = Promise.resolve();
  let lastSave = options.now();
  const save = () => {
    lastSave = options.now();
    const text = JSON.stringify({ ...sidecar, parts: parts.map((p) => ({ ...p })) });
    saving = saving.then(() => fs.writeText(side, text)).catch(() => undefined);
    return saving;
  };
  await save();
  options.onState('downloading', parts.reduce((s, p) => s + p.done, 0));
  const handle = await fs.openPartial(partial);
  const url = client.resolveUrl(repo, commit, file.path);
  const maxRetries = options.maxRetries ?? 5;
  const retryDelay = options.retryDelayMs ?? 500;
  // One part's loop: ranged requests from where its bytes stop, until it is whole.
  let stop = false; // another part failed: the rest give up at their next step
  const runPart = async (part: Part) => {
    let failures = 0;
    while (part.done < partLength(part) && !stop) {
      const from = part.start + part.done;
      try {
        const { response } = await client.request(url, { range: { start: from, end: part.end }, what, repo, ...(signal ? { signal } : {}) });
        if (response.status === 206) {
          const range = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
          if (!range || Number(range[1]) !== from) throw new HubError('server', `${what}: the server answered another range than bytes ${from}-${part.end}`);
        } else if (response.status !== 200 || from !== 0 || part.end !== file.size - 1) {
          throw new HubError('server', `${what}: the server did not honour the range request (HTTP ${response.status})`);
        }
        if (!response.body) throw new HubError('network', `${what}: the answer had no body`);
        const reader = response.body.getReader();
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            if (stop) {
              await reader.cancel().catch(() => undefined);
              break;
            }
            if (!value || value.length === 0) continue;
            const room = partLength(part) - part.done;
            const chunk = value.length > room ? value.subarray(0, room) : value;
            await handle.write(chunk, part.start + part.done);
            part.done += chunk.length;
            failures = 0;
            options.onBytes(chunk.length);
            if (options.now() - lastSave >= (options.sidecarIntervalMs ?? 1000)) void save();
            if (value.length > room) {
              await reader.cancel().catch(() => undefined);
              break;
            }
          }
        } finally {
          try {
            reader.releaseLock();
          } catch {
            /* released with the stream */
          }
        }
        if (part.done < partLength(part) && !stop) throw new HubError('network', `${what}: the connection closed at byte ${part.start + part.done}`);
      } catch (error) {
        if (signal?.aborted) throw abortError(signal, what);
        const retriable = !(error instanceof HubError) || error.kind === 'network' || error.kind === 'server';
        failures++;
        if (!retriable) throw error;
        if (failures > maxRetries) {
          const why = error instanceof Error ? error.message : String(error);
          throw new HubError('network', `${what}: the download failed ${failures} times in a row (${why}); the partial file is kept and resumes when you retry`);
        }
        await save();
        try {
          await sleep(retryDelay * failures, signal);
        } catch {
          throw abortError(signal, what);
        }
      }
    }
  };
  try {
    const results = await Promise.allSettled(
      parts.map((p) =>
        runPart(p).catch((error: unknown) => {
          stop = true;
          throw error;
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } finally {
    await handle.close();
    await save();
  }
  options.onState('verifying');
  const size = await fs.size(partial);
  if (size !== file.size) {
    await fs.remove(partial);
    await fs.remove(side);
    throw new HubError('integrity', `${what}: the download has ${size ?? 0} bytes, the Hub lists ${file.size}; the file was not kept`);
  }
  const kind = file.sha256 ? 'sha256' : /^[0-9a-f]{40}$/.test(file.oid) ? 'git-sha1' : null;
  if (kind) {
    const expected = kind === 'sha256' ? (file.sha256 as string) : file.oid;
    const actual = await fs.hash(partial, kind);
    if (actual !== expected) {
      await fs.remove(partial);
      await fs.remove(side);
      throw new HubError(
        'integrity',
        `${what} is corrupt: its ${kind === 'sha256' ? 'sha256' : 'git blob id'} is ${actual}, the Hub's is ${expected}; the file was not kept — download it again`,
      );
    }
  }
  await fs.rename(partial, final);
  await fs.remove(side);
  options.onState('done', file.size);
}

/** Deletes a request's partial files and sidecars (a cancelled download whose run is over, e.g. after a restart). */
export async function removePartials(fs: DownloadFs, request: DownloadRequest): Promise<void> {
  for (const file of request.files) {
    const partial = partialPath(request.repo, request.commit, file);
    await fs.remove(partial);
    await fs.remove(sidecarPath(partial));
  }
}

/** Is this error the user's pause or cancel (not a failure to show as one)? */
export function isStopped(error: unknown): boolean {
  return error instanceof HubError && (error.kind === 'paused' || error.kind === 'cancelled');
}

export { PAUSE };
