/**
 * Download jobs: one per choice of a repo at a commit, started, paused, resumed and cancelled by
 * id, each state change and progress step emitted as a contract `HubJob`. Shared by the desktop's
 * download manager (main/hub.ts: disk, persisted across restarts) and web mode (memory).
 */
import type { HubJob } from '../contract.js';
import type { HubChoice } from './choices.js';
import type { HubClient, HubTreeEntry } from './client.js';
import { downloadFiles, removePartials, type DownloadFs, type DownloadOptions, type DownloadProgress } from './download.js';
import { HubError, PAUSE } from './errors.js';
import type { HubSignal } from './http.js';
import { modelTarget, type HubRepoView } from './pull.js';

/** What a job needs to run again after a restart: the files and their hashes, where they go, what to open. */
export interface StoredJob {
  job: HubJob;
  files: HubTreeEntry[];
  /** The models folder it downloads into. */
  dir: string;
  /** What to open when done, relative to `dir`. */
  target: string;
}

export interface JobsDeps {
  client(): HubClient;
  fs(dir: string): DownloadFs;
  /** The models folder new jobs download into. */
  dir(): string;
  emit(job: HubJob): void;
  /** Adds the finished model to the library; returns its id (or undefined where there is no library). */
  finished(stored: StoredJob): Promise<string | undefined>;
  /** Persists the jobs (desktop); called on every state change. */
  save?(jobs: StoredJob[]): Promise<void>;
  randomId(): string;
  options?: Omit<DownloadOptions, 'signal' | 'onProgress'>;
}

const copy = (job: HubJob): HubJob => ({ ...job, files: job.files.map((f) => ({ ...f })) });

export class HubJobs {
  private readonly jobs = new Map<string, StoredJob>();
  private readonly running = new Map<string, { abort(reason?: unknown): void; done: Promise<void> }>();

  constructor(private readonly deps: JobsDeps) {}

  /** Adds the jobs of an earlier run; one that was downloading when the app stopped is paused now. */
  restore(restored: readonly StoredJob[]): void {
    for (const s of restored) {
      if (this.jobs.has(s.job.id)) continue;
      const job = s.job.state === 'downloading' ? { ...s.job, state: 'paused' as const, speed: 0, etaSeconds: null } : s.job;
      this.jobs.set(job.id, { ...s, job });
    }
  }

  list(): HubJob[] {
    return [...this.jobs.values()].map((s) => copy(s.job));
  }

  private get(id: string): StoredJob {
    const stored = this.jobs.get(id);
    if (!stored) throw new HubError('not-found', `No download with id ${id}`);
    return stored;
  }

  private changed(stored: StoredJob): void {
    this.deps.emit(copy(stored.job));
    void this.deps.save?.([...this.jobs.values()]).catch(() => undefined);
  }

  /** Starts (or returns the running or finished job of) a choice of a looked-up repo. */
  start(view: HubRepoView, choice: HubChoice): HubJob {
    const same = [...this.jobs.values()].find(
      (s) => s.job.repo === view.repo && s.job.commit === view.commit && s.job.choiceId === choice.id && s.dir === this.deps.dir() && s.job.state !== 'cancelled' && s.job.state !== 'failed',
    );
    if (same) {
      if (same.job.state === 'paused') return this.resume(same.job.id);
      return copy(same.job);
    }
    const job: HubJob = {
      id: this.deps.randomId(),
      repo: view.repo,
      revision: view.revision,
      commit: view.commit,
      choiceId: choice.id,
      label: choice.label,
      state: 'downloading',
      bytes: 0,
      total: choice.bytes,
      speed: 0,
      etaSeconds: null,
      files: choice.files.map((f) => ({ path: f.path, bytes: 0, total: f.size, state: 'waiting', speed: 0, etaSeconds: null })),
    };
    const stored: StoredJob = { job, files: choice.files, dir: this.deps.dir(), target: modelTarget(view, choice) };
    this.jobs.set(job.id, stored);
    this.run(stored);
    return copy(job);
  }

  private run(stored: StoredJob): void {
    const controller = new AbortController();
    const { job } = stored;
    job.state = 'downloading';
    delete job.error;
    this.changed(stored);
    const onProgress = (p: DownloadProgress) => {
      Object.assign(job, { bytes: p.bytes, total: p.total, speed: p.speed, etaSeconds: p.etaSeconds, files: p.files });
      this.deps.emit(copy(job));
    };
    const done = downloadFiles(
      this.deps.client(),
      this.deps.fs(stored.dir),
      { repo: job.repo, revision: job.revision, commit: job.commit, files: stored.files },
      { ...this.deps.options, signal: controller.signal as unknown as HubSignal, onProgress },
    )
      .then(async () => {
        job.speed = 0;
        job.etaSeconds = null;
        try {
          const modelId = await this.deps.finished(stored);
          if (modelId !== undefined) job.modelId = modelId;
          job.state = 'done';
        } catch (error) {
          job.state = 'failed';
          job.error = `Downloaded, but the model could not be opened: ${error instanceof Error ? error.message : String(error)}`;
        }
      })
      .catch((error: unknown) => {
        job.speed = 0;
        job.etaSeconds = null;
        if (error instanceof HubError && error.kind === 'paused') job.state = 'paused';
        else if (error instanceof HubError && error.kind === 'cancelled') job.state = 'cancelled';
        else {
          job.state = 'failed';
          job.error = error instanceof Error ? error.message : String(error);
        }
      })
      .finally(() => {
        this.running.delete(job.id);
        this.changed(stored);
      });
    this.running.set(job.id, { abort: (reason) => controller.abort(reason), done });
  }

  /** Resolves once the job's current run is over (tests, shutdown). */
  async settled(id: string): Promise<HubJob> {
    await this.running.get(id)?.done;
    return copy(this.get(id).job);
  }

  async pause(id: string): Promise<HubJob> {
    const run = this.running.get(id);
    this.get(id);
    if (run) {
      run.abort(PAUSE);
      await run.done;
    }
    return copy(this.get(id).job);
  }

  resume(id: string): HubJob {
    const stored = this.get(id);
    if (!this.running.has(id) && stored.job.state !== 'done') this.run(stored);
    return copy(stored.job);
  }

  /** Stops the job and deletes its partial files (files already checked and moved into place stay). */
  async cancel(id: string): Promise<HubJob> {
    const stored = this.get(id);
    const run = this.running.get(id);
    if (run) {
      run.abort('cancel');
      await run.done;
    } else if (stored.job.state !== 'done') {
      const { job } = stored;
      await removePartials(this.deps.fs(stored.dir), { repo: job.repo, revision: job.revision, commit: job.commit, files: stored.files });
      job.state = 'cancelled';
      this.changed(stored);
    }
    return copy(stored.job);
  }

  /** Pauses every running job (the app is quitting): their partial files stay for the next run. */
  async pauseAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((id) => this.pause(id)));
  }
}
