import { selectGpu, selectSelectedModel, useStudio } from '../store';
import { formatBytes } from '../format';

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

export function MainArea() {
  const model = useStudio(selectSelectedModel);
  return (
    <main className="main-area">
      <GpuUnavailable />
      {model ? (
        <section className="panel" aria-labelledby="model-title" data-testid="model-panel">
          <h2 id="model-title">{model.name}</h2>
          {model.description && <p>{model.description}</p>}
          <dl className="facts">
            <dt>Architecture</dt>
            <dd>{model.architecture}</dd>
            <dt>Format</dt>
            <dd>{model.format}</dd>
            <dt>Size</dt>
            <dd>{formatBytes(model.sizeBytes)}</dd>
            <dt>Source</dt>
            <dd>{model.source === 'bundled' ? 'bundled with the studio' : (model.path ?? 'opened in this window')}</dd>
            <dt>Files</dt>
            <dd>{model.files.join(', ')}</dd>
          </dl>
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
