import { useCallback, type KeyboardEvent } from 'react';
import { selectModels, selectModelsLoading, selectSelectedModelId, useStudio } from '../store';
import { formatBytes, formatCount } from '../format';
import { architectureLabel } from '../../../app/arch/registry';
import type { ModelEntry } from '../../../app/contract';

/** `onRemove`: forgets a user model (its files are not touched); Delete on the selected one does the same. */
export function Sidebar({ onOpen, onRemove, onGetModels }: { onOpen: () => void; onRemove?: (model: ModelEntry) => void; onGetModels?: () => void }) {
  const models = useStudio(selectModels);
  const loading = useStudio(selectModelsLoading);
  const selectedId = useStudio(selectSelectedModelId);
  const selectModel = useStudio((s) => s.selectModel);

  // Arrow keys move the selection within the list (one tab stop for the whole list).
  const onKeyDown = useCallback(
    (event: KeyboardEvent<HTMLUListElement>) => {
      if (event.key === 'Delete') {
        const selected = models.find((m) => m.id === selectedId);
        if (selected?.source === 'user' && onRemove) {
          event.preventDefault();
          onRemove(selected);
        }
        return;
      }
      if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
      event.preventDefault();
      const index = models.findIndex((m) => m.id === selectedId);
      const next = models[Math.min(models.length - 1, Math.max(0, index + (event.key === 'ArrowDown' ? 1 : -1)))];
      if (next) {
        selectModel(next.id);
        document.getElementById(`model-${next.id}`)?.focus();
      }
    },
    [models, selectedId, selectModel, onRemove],
  );

  return (
    <nav className="sidebar" aria-label="Models">
      <div className="sidebar-header">
        <h2>Models</h2>
        <button type="button" className="primary" onClick={onOpen} title="Open a model folder or file (Ctrl+O)">
          Open model…
        </button>
        {onGetModels && (
          <button type="button" onClick={onGetModels} title="Download a model from the Hugging Face Hub">
            Get models…
          </button>
        )}
      </div>
      {loading ? (
        <p className="muted">Loading models…</p>
      ) : models.length === 0 ? (
        <p className="muted">No models yet. Open a folder with config.json and model.safetensors (or pytorch_model.bin), or drop one here.</p>
      ) : (
        <ul role="listbox" aria-label="Model library" onKeyDown={onKeyDown}>
          {models.map((m) => (
            <li key={m.id} role="presentation" className="model-row">
              <button
                id={`model-${m.id}`}
                type="button"
                role="option"
                aria-selected={m.id === selectedId}
                tabIndex={m.id === selectedId ? 0 : -1}
                className={m.id === selectedId ? 'model selected' : 'model'}
                onClick={() => selectModel(m.id)}
              >
                <span className="model-name">{m.name}</span>
                <span className="model-meta">
                  {m.source === 'bundled' ? 'bundled · ' : ''}
                  {architectureLabel(m.architecture)}
                  {m.parameters !== undefined ? ` · ${formatCount(m.parameters)} params` : ''} · {formatBytes(m.sizeBytes)}
                </span>
              </button>
              {m.source === 'user' && onRemove && (
                <button type="button" className="model-remove" tabIndex={-1} aria-label={`Remove ${m.name} from the list`} title="Remove from the list (Delete); the files are not touched" onClick={() => onRemove(m)}>
                  ×
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <p className="drop-hint muted">Drop a model folder’s files anywhere to open it.</p>
    </nav>
  );
}
