import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './components/App';
import { EngineClient } from './engine-client';
import { createHost } from './host';
import { useStudio } from './store';
import { openSessionOrTrace } from './session/open';
import { setStudioJsonReader } from './panels/use-studio-hints';
import './styles.css';
import './styles/long-work.css';
import './styles/firstrun.css';
import './styles/workspace.css';
import './styles/sessions.css';
import './styles/chat.css';
import './styles/hub.css';

const host = createHost();
// Web mode's models held in memory (dropped, or downloaded from the Hub) have no URL for studio.json.
setStudioJsonReader((model) => {
  const source = host.modelSource(model);
  const file = source.kind === 'files' ? source.files.find((f) => f.name === 'studio.json') : undefined;
  return file ? file.slice().arrayBuffer() : null;
});
const store = useStudio.getState();
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

// The engine worker owns the GPU; the UI only hears what it reports.
const engine = EngineClient.start((event) => {
  if (event.kind === 'load-progress') store.setLoad(event.modelId, { state: 'loading', progress: event.progress });
  else if (event.kind === 'token') store.appendGenerated(event.modelId, event.text, event.index >= 0 ? event.tokensPerSecond : null, event.index >= 0 ? event.id : -1);
  else if (event.kind === 'trace-rows') store.appendTraceRows(event.modelId, event.rows);
  else if (event.kind === 'work-progress') store.setWorkProgress(event);
  else if (event.kind === 'device-lost') void recoverFromDeviceLoss(event.reason, event.message);
  else store.notify('error', `GPU error: ${event.message}`);
});
engine
  .request('init', {})
  .then(async (status) => {
    store.setGpu(status);
    if (status.state !== 'ready') return;
    // One real kernel against its CPU reference: proof the GPU path works on this adapter.
    store.setSelfTest(await engine.request('selfTest', { rows: 7, cols: 129 }));
  })
  .catch((error: unknown) => store.setSelfTest({ error: message(error) }));

/**
 * A lost device (driver reset, GPU removed) is re-created, and the model that was on it loaded
 * again, without restarting the app.
 */
async function recoverFromDeviceLoss(reason: string, detail: string): Promise<void> {
  const s = useStudio.getState();
  s.notify('error', `The GPU device was lost (${reason}${detail ? `: ${detail}` : ''}). Re-creating it…`);
  const loadedId = Object.entries(s.loads).find(([, l]) => l.state === 'loaded')?.[0];
  if (loadedId) s.setLoad(loadedId, null);
  if (s.generation?.running) s.finishGeneration({ error: 'The GPU device was lost during generation.' });
  s.setGpu({ state: 'unavailable', reason: 'the device was lost; re-creating it', advice: [] });
  const status = await engine.request('init', {});
  s.setGpu(status);
  if (status.state !== 'ready' || !loadedId) return;
  const entry = useStudio.getState().models.find((m) => m.id === loadedId);
  if (!entry) return;
  s.setLoad(loadedId, { state: 'loading', progress: null });
  engine.request('loadModel', { modelId: loadedId, source: host.modelSource(entry) }).then(
    (info) => {
      useStudio.getState().setLoad(loadedId, { state: 'loaded', info });
      useStudio.getState().notify('info', `${entry.name} was loaded again onto the new GPU device.`);
    },
    (error: unknown) => useStudio.getState().setLoad(loadedId, { state: 'failed', message: message(error) }),
  );
}

host.api.getAppInfo().then(store.setAppInfo, (error: unknown) => store.notify('error', message(error)));
host.api
  .listModels()
  .then(store.setModels, (error: unknown) => {
    store.setModels([]);
    store.notify('error', `Could not list models: ${message(error)}`);
  })
  .then(() => host.api.getNotices())
  .then((notices) => notices.forEach((n) => store.notify('info', n)))
  .catch((error: unknown) => store.notify('error', message(error)));
host.api.on('modelsChanged', store.setModels);
// Paths the OS handed to main arrive as grants, which open those paths once.
host.api.on('openPaths', (grants) => {
  host.api.openModelPaths(grants).then(
    (entries) => entries[0] && store.selectModel(entries[0].id),
    (error: unknown) => store.notify('error', message(error)),
  );
});

// Session and trace files the OS handed to main (a file association, the command line).
host.api.on('openSessionFiles', (grants) => {
  for (const grant of grants) {
    host.api.readSessionFile(grant).then(
      ({ name, bytes }) => void openSessionOrTrace(new File([bytes.slice().buffer as ArrayBuffer], name)),
      (error: unknown) => store.notify('error', message(error)),
    );
  }
});

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App host={host} engine={engine} />
  </StrictMode>,
);
