import { selectGpu, selectSelectedLoad, selectSelectedModel, useStudio } from '../store';
import { architectureLabel } from '../../../app/arch/registry';
import type { ModelEntry } from '../../../app/contract';
import type { EngineClient } from '../engine-client';
import { architectureText, formatBytes, formatCount } from '../format';
import type { Host } from '../host';
import { GenerateArea } from './GenerateArea';
import { LoadPanel } from './LoadPanel';
import { SelectionPanels } from '../panels/SelectionPanels';
import { OpenedTrace } from './OpenedTrace';
import { SessionBar } from './SessionBar';

function GpuUnavailable() {
  const gpu = useStudio(selectGpu);
  if (gpu.state !== 'unavailable') return null;
  return (
    <section className="panel error-panel" aria-labelledby="gpu-unavailable">
      <h2 id="gpu-unavailable">WebGPU is not available</h2>
      <p>{gpu.reason}</p>
      <p>What to do:</p>
      <ul>
        {gpu.advice.map((a) => (
          <li key={a}>{a}</li>
        ))}
      </ul>
    </section>
  );
}

/** The canonical config's facts worth a glance, in the paper's symbols. */
const CONFIG_ROWS: [key: string, label: string][] = [
  ['dModel', 'd_model'],
  ['nLayer', 'layers'],
  ['dInner', 'd_inner'],
  ['dState', 'N (d_state)'],
  ['dConv', 'd_conv'],
  ['dtRank', 'dt_rank'],
  ['mixerRmsEps', 'dt/B/C norm eps'],
  ['nHeads', 'heads'],
  ['headDim', 'head_dim'],
  ['nGroups', 'groups'],
  ['chunkSize', 'chunk size'],
  ['vocabSize', 'vocab'],
  ['tieEmbeddings', 'tied head'],
];

function ConfigTable({ model }: { model: ModelEntry }) {
  const config = model.config;
  if (!config) return null;
  const rows = CONFIG_ROWS.filter(([key]) => config[key] !== undefined && config[key] !== 0);
  return (
    <table className="config" data-testid="model-config">
      <tbody>
        {rows.map(([key, label]) => (
          <tr key={key}>
            <th scope="row">{label}</th>
            <td>{String(config[key])}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function MainArea({ host, engine }: { host: Host; engine: EngineClient }) {
  const model = useStudio(selectSelectedModel);
  const load = useStudio(selectSelectedLoad);
  return (
    <main className="main-area">
      <GpuUnavailable />
      <SessionBar host={host} />
      <OpenedTrace />
      {model ? (
        <section className="panel" aria-labelledby="model-title" data-testid="model-panel">
          <h2 id="model-title">{model.name}</h2>
          {model.description && <p>{model.description}</p>}
          <LoadPanel model={model} host={host} engine={engine} />
          {/* Once the model is loaded its facts fold away (the work area starts near the top); the summary opens them. */}
          <details className="model-details" key={load?.state === 'loaded' ? 'loaded' : 'not-loaded'} open={load?.state !== 'loaded'} data-testid="model-details">
            <summary>Model: facts and configuration</summary>
            <dl className="facts">
              <dt>Architecture</dt>
              <dd data-testid="model-architecture">{architectureText(architectureLabel(model.architecture), model.config)}</dd>
              <dt>Format</dt>
              <dd>{model.format === 'pytorch' ? 'PyTorch .bin (read without running its pickle)' : model.format}</dd>
              <dt>Parameters</dt>
              <dd data-testid="model-parameters">{model.parameters !== undefined ? formatCount(model.parameters) : 'unknown'}</dd>
              <dt>Size</dt>
              <dd>{formatBytes(model.sizeBytes)}</dd>
              <dt>Source</dt>
              <dd>{model.source === 'bundled' ? 'bundled with the studio' : (model.path ?? 'opened in this window')}</dd>
              <dt>Files</dt>
              <dd data-testid="model-files">{model.files.join(', ')}</dd>
            </dl>
            <ConfigTable model={model} />
          </details>
          {model.warnings && model.warnings.length > 0 && (
            <ul className="warnings">
              {model.warnings.map((w) => (
                <li key={w}>{w}</li>
              ))}
            </ul>
          )}
          {load?.state === 'loaded' && <SelectionPanels model={model} info={load.info} engine={engine} generate={<GenerateArea key={model.id} model={model} info={load.info} engine={engine} />} />}
        </section>
      ) : (
        <section className="panel welcome">
          <h2>Mamba Studio</h2>
          <p>Open a Mamba or Mamba-2 checkpoint (a Hugging Face folder or a GGUF file) to run it on the GPU and see, token by token, what its selection mechanism keeps and filters.</p>
        </section>
      )}
    </main>
  );
}
