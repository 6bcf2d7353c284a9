/**
 * The desktop's download manager: the contract's hub* methods over app/hub. Main does the network
 * (Electron's `net.fetch`: Chromium's stack, which follows the system's and the environment's
 * proxies) and the disk work; the renderer names a repo and a choice, never files or paths.
 *
 * - Models folder: `<userData>/models` unless the user chose another (hub-settings.json, which the
 *   CLI's `pull` reads too: app/node/app-data.ts).
 * - Token: stored only encrypted by the OS through `safeStorage` (hub-token.bin in userData);
 *   refused when encryption is unavailable, or on Linux when it would be the "basic_text" backend
 *   (a fixed key: as good as plain text). It is sent only to the endpoint's host (app/hub/client.ts).
 * - Jobs: persisted in hub-jobs.json, so a download running when the app quit is offered paused on
 *   the next start and resumes from its partial files.
 * - A finished download is opened into the library (`openModel`) and its id sent with the job.
 * Electron is injected (see main/main.ts), so the logic runs in Node tests.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { HubJob, HubRepoInfo, HubSearchResult, HubSettings, PlanAdapter } from '../app/contract.js';
import type { MemoryPlan } from '../app/model/memory-plan.js';
import { HubClient, hubEndpoint } from '../app/hub/client.js';
import type { DownloadOptions } from '../app/hub/download.js';
import { HubError } from '../app/hub/errors.js';
import type { HubFetch } from '../app/hub/http.js';
import { HubJobs, type StoredJob } from '../app/hub/jobs.js';
import { planChoice } from '../app/hub/plan.js';
import { lookupRepo, type HubRepoView } from '../app/hub/pull.js';
import { parseHubRef } from '../app/hub/repo-ref.js';
import { HUB_SETTINGS_FILE } from '../app/node/app-data.js';
import { nodeDownloadFs, type StatFs } from '../app/node/hub-fs.js';

export const HUB_TOKEN_FILE = 'hub-token.bin';
export const HUB_JOBS_FILE = 'hub-jobs.json';

/** Electron's safeStorage, as far as the token needs it. */
export interface TokenCrypto {
  isEncryptionAvailable(): boolean;
  encryptString(text: string): Buffer;
  decryptString(bytes: Buffer): string;
  getSelectedStorageBackend?(): string;
}

export interface HubMainDeps {
  userData: string;
  fetch: HubFetch;
  env: Record<string, string | undefined>;
  safeStorage: TokenCrypto;
  platform: NodeJS.Platform;
  /** Adds a downloaded model (absolute path) to the library and announces it; returns its id. */
  openModel(target: string): Promise<string>;
  emit(job: HubJob): void;
  /** A folder dialog; null when cancelled. */
  chooseFolder(): Promise<string | null>;
  statfs?: StatFs;
  downloadOptions?: Omit<DownloadOptions, 'signal' | 'onProgress'>;
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 1));
  await rename(tmp, file);
}

/** A stored job read back, or null when the entry is not one (a damaged file loses its bad entries, never the app). */
function storedJob(value: unknown): StoredJob | null {
  const s = value as Partial<StoredJob> | null;
  const job = s?.job as Partial<HubJob> | undefined;
  if (!s || !job || typeof s.dir !== 'string' || !path.isAbsolute(s.dir) || typeof s.target !== 'string' || !Array.isArray(s.files)) return null;
  if (typeof job.id !== 'string' || typeof job.repo !== 'string' || typeof job.commit !== 'string' || !/^[0-9a-f]{40}$/.test(job.commit)) return null;
  if (s.target.split('/').includes('..')) return null;
  const files = s.files.filter(
    (f) => f && typeof f.path === 'string' && !f.path.split('/').includes('..') && Number.isSafeInteger(f.size) && typeof f.oid === 'string',
  );
  if (files.length !== s.files.length) return null;
  return s as StoredJob;
}

export class HubMain {
  private readonly jobs: HubJobs;
  private readonly views = new Map<string, HubRepoView>();
  private modelsDir: string;
  private token: string | null = null;
  private saving: Promise<void> = Promise.resolve();
  readonly ready: Promise<void>;

  constructor(private readonly deps: HubMainDeps) {
    this.modelsDir = path.join(deps.userData, 'models');
    this.jobs = new HubJobs({
      client: () => this.client(),
      fs: (dir) => nodeDownloadFs(dir, deps.statfs),
      dir: () => this.modelsDir,
      emit: (job) => deps.emit(job),
      finished: (stored) => deps.openModel(path.join(stored.dir, ...stored.target.split('/'))),
      save: (jobs) => this.saveJobs(jobs),
      randomId: () => randomBytes(16).toString('hex'),
      ...(deps.downloadOptions ? { options: deps.downloadOptions } : {}),
    });
    this.ready = this.load();
  }

  private async load(): Promise<void> {
    try {
      const settings = JSON.parse(await readFile(path.join(this.deps.userData, HUB_SETTINGS_FILE), 'utf8')) as { modelsDir?: unknown };
      if (typeof settings.modelsDir === 'string' && path.isAbsolute(settings.modelsDir)) this.modelsDir = settings.modelsDir;
    } catch {
      /* defaults */
    }
    try {
      const bytes = await readFile(path.join(this.deps.userData, HUB_TOKEN_FILE));
      if (this.deps.safeStorage.isEncryptionAvailable()) this.token = this.deps.safeStorage.decryptString(bytes);
    } catch {
      /* no token, or it cannot be decrypted any more */
    }
    try {
      const list = JSON.parse(await readFile(path.join(this.deps.userData, HUB_JOBS_FILE), 'utf8')) as unknown;
      const jobs = Array.isArray(list) ? list.map(storedJob).filter((s): s is StoredJob => s !== null) : [];
      this.jobs.restore(jobs.filter((s) => s.job.state !== 'cancelled' && s.job.state !== 'done'));
    } catch {
      /* none */
    }
  }

  private saveJobs(jobs: StoredJob[]): Promise<void> {
    const keep = jobs.filter((s) => s.job.state !== 'cancelled' && s.job.state !== 'done');
    this.saving = this.saving.then(() => writeJson(path.join(this.deps.userData, HUB_JOBS_FILE), keep)).catch(() => undefined);
    return this.saving;
  }

  private endpoint(): string {
    return hubEndpoint(this.deps.env);
  }

  private client(): HubClient {
    return new HubClient({ fetch: this.deps.fetch, endpoint: this.endpoint(), token: this.token, redirects: 'manual' });
  }

  /** Why a token cannot be stored here, or null when it can. */
  private tokenRefusal(): string | null {
    const s = this.deps.safeStorage;
    if (!s.isEncryptionAvailable()) return 'the OS offers no encryption for it (no keychain or secret service is available)';
    if (this.deps.platform === 'linux' && s.getSelectedStorageBackend?.() === 'basic_text') {
      return 'no secret service (GNOME Keyring, KWallet) is running, so it could only be stored with a fixed key';
    }
    return null;
  }

  async settings(): Promise<HubSettings> {
    await this.ready;
    const refusal = this.tokenRefusal();
    return {
      modelsDir: this.modelsDir,
      endpoint: this.endpoint(),
      hasToken: this.token !== null,
      tokenStorage: refusal === null ? { available: true } : { available: false, reason: refusal },
    };
  }

  async setToken(token: string | null): Promise<HubSettings> {
    await this.ready;
    const file = path.join(this.deps.userData, HUB_TOKEN_FILE);
    if (token === null) {
      this.token = null;
      await rm(file, { force: true });
      return this.settings();
    }
    const refusal = this.tokenRefusal();
    if (refusal !== null) throw new Error(`The token was not stored: ${refusal}. It is never written in plain text.`);
    await mkdir(this.deps.userData, { recursive: true });
    await writeFile(file, this.deps.safeStorage.encryptString(token));
    this.token = token;
    return this.settings();
  }

  async chooseModelsFolder(): Promise<HubSettings> {
    await this.ready;
    const chosen = await this.deps.chooseFolder();
    if (chosen !== null) {
      if (!path.isAbsolute(chosen)) throw new Error(`${chosen}: not an absolute folder`);
      await mkdir(chosen, { recursive: true });
      this.modelsDir = chosen;
      await writeJson(path.join(this.deps.userData, HUB_SETTINGS_FILE), { modelsDir: chosen });
    }
    return this.settings();
  }

  async lookup(input: string): Promise<HubRepoInfo> {
    await this.ready;
    const view = await lookupRepo(this.client(), parseHubRef(input, this.endpoint()));
    this.views.set(`${view.repo}@${view.revision}`, view);
    return {
      ...view,
      choices: view.choices.map((c) => ({ ...c, files: c.files.map((f) => ({ path: f.path, size: f.size })) })),
    };
  }

  async search(query: string): Promise<HubSearchResult[]> {
    await this.ready;
    return this.client().search(query, 100);
  }

  private async view(repo: string, revision: string): Promise<HubRepoView> {
    const view = this.views.get(`${repo}@${revision}`) ?? (await lookupRepo(this.client(), { repo, revision }));
    this.views.set(`${repo}@${revision}`, view);
    return view;
  }

  /** The memory plan of a choice for the renderer's adapter, from the headers over the Hub. */
  async plan(repo: string, revision: string, choiceId: string, adapter: PlanAdapter | null): Promise<MemoryPlan> {
    await this.ready;
    const view = await this.view(repo, revision);
    const choice = view.choices.find((c) => c.id === choiceId);
    if (!choice) throw new HubError('not-found', `${repo} has no choice "${choiceId}"`);
    return planChoice(this.client(), view, choice, adapter);
  }

  /** Starts a choice of a repo looked up before (else looked up now: the files and hashes always come from the Hub, never the renderer). */
  async download(repo: string, revision: string, choiceId: string): Promise<HubJob> {
    await this.ready;
    const view = await this.view(repo, revision);
    const choice = view.choices.find((c) => c.id === choiceId);
    if (!choice) throw new HubError('not-found', `${repo} has no choice "${choiceId}"`);
    return this.jobs.start(view, choice);
  }

  async list(): Promise<HubJob[]> {
    await this.ready;
    return this.jobs.list();
  }

  async pause(id: string): Promise<HubJob> {
    await this.ready;
    return this.jobs.pause(id);
  }

  async resume(id: string): Promise<HubJob> {
    await this.ready;
    return this.jobs.resume(id);
  }

  async cancel(id: string): Promise<HubJob> {
    await this.ready;
    return this.jobs.cancel(id);
  }

  /** Waits for a job's current run (tests). */
  settled(id: string): Promise<HubJob> {
    return this.jobs.settled(id);
  }

  /** Pauses running downloads (before quitting); their partial files stay. */
  async shutdown(): Promise<void> {
    await this.jobs.pauseAll();
    await this.saving;
  }
}
