/**
 * The generate area: the prompt view (GeneratePanel) and, for a model with a chat template
 * (instruct models), the chat view (ChatPanel), with a toggle between them. Both stay mounted
 * while the model is loaded, so switching keeps the prompt and the conversation.
 */
import { useState } from 'react';
import type { ModelEntry } from '../../../app/contract';
import type { LoadedModelInfo } from '../../../app/engine/protocol';
import type { EngineClient } from '../engine-client';
import { ChatPanel } from './ChatPanel';
import { GeneratePanel } from './GeneratePanel';

export function GenerateArea({ model, info, engine }: { model: ModelEntry; info: LoadedModelInfo; engine: EngineClient }) {
  const template = info.tokenizer !== 'none' ? info.chatTemplate : undefined;
  const [view, setView] = useState<'prompt' | 'chat'>(template ? 'chat' : 'prompt');
  const problem = info.chatTemplateError ?? (info.chatTemplate && !template ? 'This model has a chat template but no tokenizer: chat needs text prompts.' : null);
  return (
    <>
      {problem && (
        <p className="warnings" data-testid="chat-template-problem">
          Chat is not available: {problem}
        </p>
      )}
      {template && (
        <div className="view-toggle" role="group" aria-label="Generate view">
          <button type="button" aria-pressed={view === 'prompt'} onClick={() => setView('prompt')}>
            Prompt
          </button>
          <button type="button" aria-pressed={view === 'chat'} onClick={() => setView('chat')}>
            Chat
          </button>
        </div>
      )}
      <div hidden={view !== 'prompt'}>
        <GeneratePanel model={model} info={info} engine={engine} />
      </div>
      {template && (
        <div hidden={view !== 'chat'}>
          <ChatPanel model={model} template={template} engine={engine} />
        </div>
      )}
    </>
  );
}
