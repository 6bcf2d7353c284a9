import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './components/App';
import { EngineClient } from './engine-client';
import { createHost } from './host';
import { useStudio } from './store';
import './styles.css';

const host = createHost();
const store = useStudio.getState();
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

// The engine worker owns the GPU; the UI only hears what it reports.
const engine = EngineClient.start((event) => {
  if (event.kind === 'load-progress') store.setLoad(event.modelId, { state: 'loading', progress: event.progress });
  else if (event.kind === 'token') store.appendGenerated(event.modelId, event.text, event.index >= 0 ? event.tokensPerSecond : null);
  else if (event.kind === 'device-lost') store.notify('error', `The GPU device was lost (${event.reason}): ${event.message}`);
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
host.api.on('openPaths', (paths) => {
  host.api.openModelPaths(paths).then(
    (entries) => entries[0] && store.selectModel(entries[0].id),
    (error: unknown) => store.notify('error', message(error)),
  );
});

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App host={host} engine={engine} />
  </StrictMode>,
);
