/**
 * "Get models": paste a Hub repo id or URL (or search), see the files the studio can open with
 * their sizes, license, gated state and whether the weights fit this GPU, and download one choice
 * with progress per file and in total, pause / resume / cancel, and a token for gated repos. The
 * host does the work (main/hub.ts on the desktop, web-hub.ts in the browser); a finished download
 * is in the library and gets selected (use-hub-opens.ts). A modal dialog: Escape closes it, focus starts in the input.
 */
import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from 'react';
import type { HubChoiceView, HubJob, HubRepoInfo, HubSearchResult, HubSettings, PlanAdapter } from '../../../app/contract';
import { formatBytes } from '../../../app/hub/errors';
import { estimateDeviceMemory, type MemoryPlan, type PlanOptions } from '../../../app/model/memory-plan';
import type { Host } from '../host';
import { selectGpu, useStudio } from '../store';
import { choiceVerdict, planVerdict, progressText, withJob, type Verdict } from './view-model';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error)).replace(/^Error invoking remote method '[^']+': /, '');

function JobRow({ job, host, onError }: { job: HubJob; host: Host; onError: (text: string) => void }) {
  const act = (f: () => Promise<unknown>) => () => void f().catch((e: unknown) => onError(message(e)));
  return (
    <li className={`hub-job hub-job-${job.state}`} data-testid="hub-job">
      <div className="hub-job-head">
        <span className="hub-job-name">
          {job.repo} · {job.label}
        </span>
        <span className="hub-job-actions">
          {job.state === 'downloading' && (
            <button type="button" onClick={act(() => host.api.hubPause(job.id))}>
              Pause
            </button>
          )}
          {(job.state === 'paused' || job.state === 'failed') && (
            <button type="button" onClick={act(() => host.api.hubResume(job.id))}>
              Resume
            </button>
          )}
          {job.state !== 'done' && job.state !== 'cancelled' && (
            <button type="button" onClick={act(() => host.api.hubCancel(job.id))} title="Stop and delete the partial files">
              Cancel
            </button>
          )}
        </span>
      </div>
      <progress max={job.total || 1} value={job.bytes} aria-label={`${job.repo} download`} />
      <div className="hub-job-text" data-testid="hub-job-text">
        {progressText(job)}
      </div>
      {job.error && (
        <div className="hub-error" role="alert">
          {job.error}
        </div>
      )}
      {job.files.length > 1 && (
        <details>
          <summary>Files</summary>
          <ul className="hub-job-files">
            {job.files.map((f) => (
              <li key={f.path}>
                <span>{f.path}</span> <progress max={f.total || 1} value={f.bytes} aria-label={f.path} /> <span>{progressText({ ...f, state: f.state === 'downloading' ? 'downloading' : f.state })}</span>
              </li>
            ))}
          </ul>
        </details>
      )}
    </li>
  );
}

function TokenForm({ host, settings, onSettings, onError }: { host: Host; settings: HubSettings; onSettings: (s: HubSettings) => void; onError: (t: string) => void }) {
  const [token, setToken] = useState('');
  const id = useId();
  const save = (event: FormEvent) => {
    event.preventDefault();
    if (!token.trim()) return;
    host.api.hubSetToken(token.trim()).then(
      (s) => {
        setToken('');
        onSettings(s);
      },
      (e: unknown) => onError(message(e)),
    );
  };
  return (
    <form className="hub-token" onSubmit={save}>
      <label htmlFor={id}>Access token {settings.hasToken ? '(one is set)' : '(for gated repos)'}</label>
      <input id={id} type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} placeholder="hf_…" />
      <button type="submit" disabled={!token.trim()}>
        Save token
      </button>
      {settings.hasToken && (
        <button type="button" onClick={() => void host.api.hubSetToken(null).then(onSettings, (e: unknown) => onError(message(e)))}>
          Forget token
        </button>
      )}
      {!settings.tokenStorage.available && <p className="muted">{settings.tokenStorage.reason}.</p>}
    </form>
  );
}

type Planned = { state: 'planning' } | { state: 'done'; plan: MemoryPlan } | { state: 'failed'; message: string };

/** A choice's verdict: the memory plan from its headers once it is here, meanwhile (or when it fails) the weights' size against the GPU. */
function verdictOf(planned: Planned | undefined, choice: HubChoiceView, device: ReturnType<typeof estimateDeviceMemory>): Verdict & { note?: string } {
  if (planned?.state === 'done') return planVerdict(planned.plan);
  const rough = choiceVerdict(choice, device);
  if (planned?.state === 'failed') return { ...rough, note: `No memory plan: ${planned.message}` };
  return { ...rough, note: 'Planning GPU memory from the headers…' };
}

export function GetModels({ host, onClose }: { host: Host; onClose: () => void }) {
  const [input, setInput] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [hits, setHits] = useState<HubSearchResult[] | null>(null);
  const [repo, setRepo] = useState<HubRepoInfo | null>(null);
  const [jobs, setJobs] = useState<HubJob[]>([]);
  const [settings, setSettings] = useState<HubSettings | null>(null);
  const gpu = useStudio(selectGpu);
  const inputRef = useRef<HTMLInputElement>(null);
  const titleId = useId();
  const device = estimateDeviceMemory(gpu.state === 'ready' ? (gpu.adapter as PlanOptions['adapter']) : null);
  const [plans, setPlans] = useState<Record<string, Planned>>({});
  const adapter: PlanAdapter | null =
    gpu.state === 'ready'
      ? {
          vendor: gpu.adapter.vendor,
          architecture: gpu.adapter.architecture,
          device: gpu.adapter.device,
          description: gpu.adapter.description,
          limits: { maxStorageBufferBindingSize: gpu.adapter.limits.maxStorageBufferBindingSize, maxBufferSize: gpu.adapter.limits.maxBufferSize },
        }
      : null;
  const adapterKey = JSON.stringify(adapter);

  // The memory plan of each choice, one at a time (a GGUF repo may offer twenty quants).
  useEffect(() => {
    if (!repo) return;
    let live = true;
    const forAdapter = JSON.parse(adapterKey) as PlanAdapter | null;
    setPlans(Object.fromEntries(repo.choices.map((c) => [c.id, { state: 'planning' }])));
    void (async () => {
      for (const c of repo.choices) {
        const planned: Planned = await host.api.hubPlan(repo.repo, repo.revision, c.id, forAdapter).then(
          (plan) => ({ state: 'done', plan }),
          (e: unknown) => ({ state: 'failed', message: message(e) }),
        );
        if (!live) return;
        setPlans((now) => ({ ...now, [c.id]: planned }));
      }
    })();
    return () => {
      live = false;
    };
  }, [host, repo, adapterKey]);

  useEffect(() => {
    inputRef.current?.focus();
    void host.api.hubSettings().then(setSettings, (e: unknown) => setError(message(e)));
    void host.api.hubJobs().then((list) => setJobs((now) => list.reduce(withJob, now)), () => undefined);
    // A finished one is opened by useHubDownloadsOpen (App), whether or not this dialog is open.
    return host.api.on('hubJob', (job) => setJobs((now) => withJob(now, job)));
  }, [host]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        onClose();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onClose]);

  const run = useCallback(async <T,>(work: () => Promise<T>, done: (value: T) => void) => {
    setBusy(true);
    setError(null);
    try {
      done(await work());
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  }, []);

  const lookup = (text: string) => run(() => host.api.hubLookup(text), (info) => {
    setRepo(info);
    setHits(null);
  });
  const search = () => run(() => host.api.hubSearch(input), (list) => {
    setHits(list);
    setRepo(null);
  });
  const download = (choice: HubChoiceView) => {
    if (!repo) return;
    void run(() => host.api.hubDownload(repo.repo, repo.revision, choice.id), (job) => setJobs((now) => withJob(now, job)));
  };

  return (
    <div className="hub-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className="hub-dialog" role="dialog" aria-modal="true" aria-labelledby={titleId} data-testid="get-models">
        <div className="hub-title">
          <h2 id={titleId}>Get models from the Hugging Face Hub</h2>
          <button type="button" onClick={onClose} aria-label="Close (Escape)">
            ×
          </button>
        </div>
        <form
          className="hub-find"
          onSubmit={(e) => {
            e.preventDefault();
            if (input.trim()) void lookup(input);
          }}
        >
          <input
            ref={inputRef}
            value={input}
            onChange={(e) => setInput(e.target.value)}
            placeholder="state-spaces/mamba-130m-hf, a Hub URL, or words to search"
            aria-label="Hub repo id, URL or search words"
          />
          <button type="submit" className="primary" disabled={busy || !input.trim()}>
            Open repo
          </button>
          <button type="button" onClick={() => void search()} disabled={busy}>
            Search
          </button>
        </form>
        {busy && <p className="muted">Asking the Hub…</p>}
        {error && (
          <p className="hub-error" role="alert">
            {error}
          </p>
        )}
        {hits && (
          <ul className="hub-hits" aria-label="Search results">
            {hits.length === 0 && <li className="muted">No models the studio runs match.</li>}
            {hits.map((h) => (
              <li key={h.repo}>
                <button
                  type="button"
                  onClick={() => {
                    setInput(h.repo);
                    void lookup(h.repo);
                  }}
                >
                  {h.repo}
                </button>{' '}
                <span className="muted">
                  {h.kind}
                  {h.gated ? ' · gated' : ''}
                  {h.downloads !== null ? ` · ${h.downloads.toLocaleString()} downloads` : ''}
                </span>
              </li>
            ))}
          </ul>
        )}
        {repo && (
          <section className="hub-repo" aria-label={repo.repo}>
            <h3>
              {repo.repo} <span className="muted">@ {repo.revision === repo.commit ? repo.commit.slice(0, 12) : `${repo.revision} (${repo.commit.slice(0, 12)})`}</span>
            </h3>
            <p>
              License: {repo.license ?? 'not stated'} · {repo.gated ? `gated (${repo.gated}): accept its terms on the Hub and add a token` : 'not gated'}
            </p>
            {repo.choices.length === 0 ? (
              <p className="hub-error">This repo has no files the studio can open (config.json with .safetensors or pytorch_model.bin, or a .gguf).</p>
            ) : (
              <table className="hub-choices">
                <thead>
                  <tr>
                    <th scope="col">Files</th>
                    <th scope="col">Size</th>
                    <th scope="col">This GPU</th>
                    <th scope="col">
                      <span className="visually-hidden">Download</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {repo.choices.map((c) => {
                    const verdict = verdictOf(plans[c.id], c, device);
                    return (
                      <tr key={c.id} data-testid="hub-choice">
                        <td title={c.files.map((f) => `${f.path} (${formatBytes(f.size)})`).join('\n')}>
                          {c.label}
                          <div className="muted">{c.files.map((f) => f.path).join(', ')}</div>
                        </td>
                        <td>{formatBytes(c.bytes)}</td>
                        <td className={verdict.fits === false ? 'hub-error' : ''} data-testid="hub-verdict" title={verdict.note}>
                          {verdict.text}
                          {verdict.note && <div className="muted">{verdict.note}</div>}
                        </td>
                        <td>
                          <button type="button" onClick={() => download(c)} disabled={busy}>
                            Download
                          </button>
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            )}
          </section>
        )}
        {jobs.length > 0 && (
          <section aria-label="Downloads">
            <h3>Downloads</h3>
            <ul className="hub-jobs">
              {jobs.map((j) => (
                <JobRow key={j.id} job={j} host={host} onError={setError} />
              ))}
            </ul>
          </section>
        )}
        {settings && (
          <section className="hub-settings" aria-label="Hub settings">
            <p>
              Models folder: <code>{settings.modelsDir}</code>{' '}
              {host.shell === 'desktop' && (
                <button type="button" onClick={() => void host.api.hubChooseModelsFolder().then(setSettings, (e: unknown) => setError(message(e)))}>
                  Change…
                </button>
              )}{' '}
              · Hub: <code>{settings.endpoint}</code>
            </p>
            <TokenForm host={host} settings={settings} onSettings={setSettings} onError={setError} />
          </section>
        )}
      </div>
    </div>
  );
}
