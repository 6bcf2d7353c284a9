import { formatBytes } from '../format';
import { selectAppInfo, selectGpu, selectLoadedModel, selectSelfTest, useStudio } from '../store';

export function StatusBar() {
  const gpu = useStudio(selectGpu);
  const selfTest = useStudio(selectSelfTest);
  const info = useStudio(selectAppInfo);
  const loaded = useStudio(selectLoadedModel);

  let gpuText: string;
  let gpuClass = 'status-gpu';
  if (gpu.state === 'probing') gpuText = 'WebGPU: looking for an adapter…';
  else if (gpu.state === 'ready') {
    gpuText = `WebGPU: ${gpu.description}`;
    if (gpu.adapter.software) gpuClass += ' warn';
  } else {
    gpuText = `WebGPU unavailable: ${gpu.reason}`;
    gpuClass += ' error';
  }

  let testText = '';
  if (selfTest && 'error' in selfTest) testText = `GPU check failed: ${selfTest.error}`;
  else if (selfTest) {
    testText = selfTest.passed
      ? `GPU check passed (${selfTest.op}, rel. err ${selfTest.maxRelativeError.toExponential(1)})`
      : `GPU check FAILED: rel. err ${selfTest.maxRelativeError.toExponential(2)} > ${selfTest.tolerance}`;
  }

  return (
    <footer className="status-bar" role="status" aria-live="polite">
      <span className={gpuClass} data-testid="gpu-status" title={gpu.state === 'unavailable' ? gpu.advice.join('\n') : undefined}>
        {gpuText}
      </span>
      {testText && <span data-testid="gpu-selftest">{testText}</span>}
      {loaded && (
        <span data-testid="gpu-memory">
          GPU memory: weights {formatBytes(loaded.bytesOnGpu)} · state and activations {formatBytes(loaded.runtimeBytes)}
        </span>
      )}
      <span className="spacer" />
      {info && (
        <span data-testid="app-version">
          Mamba Studio {info.version} · {info.shell === 'desktop' ? `desktop (Electron ${info.versions.electron ?? '?'})` : 'web'}
        </span>
      )}
    </footer>
  );
}
