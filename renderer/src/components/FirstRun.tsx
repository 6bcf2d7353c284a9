/**
 * The guided first run, from a model's studio.json: its suggested prompts as chips (a click puts
 * the prompt into the generate box and the trace box) and its "what to look at" note beside the
 * selection panels (collapsible).
 */
import { useState } from 'react';
import { promptBoxText, promptChip, type StudioHints } from '../panels/selection';
import { useStudio } from '../store';

export function PromptChips({ modelId, hints }: { modelId: string; hints: StudioHints }) {
  const prompts = hints.prompts ?? [];
  if (prompts.length === 0) return null;
  return (
    <div className="prompt-chips" role="group" aria-label="Suggested inputs (studio.json)" data-testid="prompt-chips">
      <span className="muted">Try:</span>
      {prompts.map((prompt, i) => {
        const chip = promptChip(prompt, i, hints.labels);
        return (
          <button
            key={i}
            type="button"
            className="chip"
            title={`${chip.title}\n(puts this prompt into the generate and trace boxes)`}
            onClick={() => useStudio.getState().suggestPrompt(modelId, promptBoxText(prompt))}
          >
            {chip.label}
          </button>
        );
      })}
    </div>
  );
}

export function WhatToLookAt({ text }: { text: string | undefined }) {
  const [open, setOpen] = useState(true);
  if (!text) return null;
  return (
    <details className="what-to-look-at" data-testid="what-to-look-at" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>What to look at</summary>
      <p>{text}</p>
    </details>
  );
}
