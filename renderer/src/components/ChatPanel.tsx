/**
 * Chat with an instruct model through its chat template (tokenizer_config.json or GGUF metadata):
 * the conversation (an optional system message when the template takes one, then user and
 * assistant turns), each reply generated from the templated conversation (streaming, the
 * engine's `generate`), "Trace this turn" (the templated conversation up to that turn, traced
 * like a prompt: the selection panels show it), Clear, and the rendered prompt.
 * Enter sends (Shift+Enter: a new line), Escape stops the reply.
 */
import { useMemo, useState, type KeyboardEvent } from 'react';
import type { ModelEntry } from '../../../app/contract';
import { supportsSystemMessage, type ChatTemplate } from '../../../app/tokenizer/chat-template';
import { replyContent, replyPrompt, turnPrompt, type ChatTurn } from '../chat';
import type { EngineClient } from '../engine-client';
import { selectGeneration, selectTrace, useStudio } from '../store';
import { startTrace } from '../panels/run-trace';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

interface Settings {
  maxTokens: number;
  temperature: number;
  seed: number;
}
const DEFAULTS: Settings = { maxTokens: 200, temperature: 0.8, seed: 0 };

export function ChatPanel({ model, template, engine }: { model: ModelEntry; template: ChatTemplate; engine: EngineClient }) {
  const generation = useStudio(selectGeneration);
  const trace = useStudio(selectTrace);
  const [turns, setTurns] = useState<ChatTurn[]>([]);
  const [draft, setDraft] = useState('');
  const [system, setSystem] = useState('');
  const [settings, setSettings] = useState<Settings>(DEFAULTS);
  const [replying, setReplying] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [traced, setTraced] = useState<number | null>(null);
  const takesSystem = useMemo(() => supportsSystemMessage(template), [template]);
  const systemUsed = takesSystem ? system : '';
  const running = generation?.running === true;
  const tracing = trace?.state === 'running';

  const rendered = useMemo(() => {
    try {
      return { text: replyPrompt(template, systemUsed, turns) };
    } catch (e) {
      return { error: message(e) };
    }
  }, [template, systemUsed, turns]);

  const send = () => {
    const store = useStudio.getState();
    if (store.generation?.running) return setError('A generation is running: stop it first.');
    if (draft.trim() === '') return setError('Type a message first.');
    const next: ChatTurn[] = [...turns, { role: 'user', content: draft }];
    let prompt: string;
    try {
      prompt = replyPrompt(template, systemUsed, next);
    } catch (e) {
      return setError(message(e));
    }
    setTurns(next);
    setDraft('');
    setError(null);
    setReplying(true);
    store.startGeneration(model.id, prompt);
    engine
      .request('generate', {
        modelId: model.id,
        // The template writes the special tokens it wants (a bos_token …): none are added again.
        prompt: { text: prompt, addSpecialTokens: false },
        maxTokens: settings.maxTokens,
        temperature: settings.temperature,
        topK: 40,
        topP: 0.95,
        repetitionPenalty: 1,
        seed: settings.seed,
        stopStrings: [],
        trace: false,
      })
      .then(
        (result) => {
          useStudio.getState().finishGeneration({ stopReason: result.stopReason, tokensPerSecond: result.tokensPerSecond });
          setTurns((t) => [...t, { role: 'assistant', content: replyContent(result.text, template), stopReason: result.stopReason }]);
        },
        (e: unknown) => {
          useStudio.getState().finishGeneration({ error: message(e) });
          setError(message(e));
        },
      )
      .finally(() => setReplying(false));
  };

  const stop = () => void engine.request('stopGeneration', {});

  const traceTurn = (index: number) => {
    const store = useStudio.getState();
    if (store.trace?.state === 'running') return setError('A trace is running: wait for it to finish, or cancel it.');
    if (store.generation?.running) return setError('A generation is running: trace the turn when it has finished.');
    let text: string;
    try {
      text = turnPrompt(template, systemUsed, turns, index);
    } catch (e) {
      return setError(message(e));
    }
    setError(null);
    setTraced(index);
    // The trace box shows what was traced (the templated conversation, special tokens included).
    store.setPromptDraft('trace', text);
    void startTrace(engine, model.id, { text, addSpecialTokens: false });
  };

  const clear = () => {
    setTurns([]);
    setTraced(null);
    setError(null);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      send();
    }
  };
  const onPanelKeyDown = (event: KeyboardEvent) => {
    if (event.key === 'Escape' && running) {
      event.preventDefault();
      stop();
    }
  };

  const number = (key: keyof Settings, label: string, props: { min?: number; max?: number; step?: number }) => (
    <label className="setting">
      <span>{label}</span>
      <input type="number" value={settings[key]} {...props} onChange={(e) => setSettings((s) => ({ ...s, [key]: Number(e.target.value) }))} aria-label={`Chat ${label.toLowerCase()}`} />
    </label>
  );

  const streaming = replying && generation?.modelId === model.id ? generation : null;

  return (
    <section className="generate chat" aria-label="Chat" data-testid="chat-panel" onKeyDown={onPanelKeyDown}>
      <p className="chat-source">
        Chat template from <code>{template.file}</code>
      </p>
      {takesSystem && (
        <label className="chat-system">
          <span>System message (optional)</span>
          <textarea value={system} onChange={(e) => setSystem(e.target.value)} rows={2} aria-label="System message" placeholder="e.g. You are a helpful assistant." />
        </label>
      )}
      <ol className="chat-turns" aria-label="Conversation" data-testid="chat-turns">
        {turns.map((turn, i) => (
          <li key={i} className={`chat-turn ${turn.role}${traced === i ? ' traced' : ''}`} data-role={turn.role}>
            <div className="chat-turn-head">
              <span className="chat-role">{turn.role === 'user' ? 'You' : 'Model'}</span>
              {turn.stopReason && <span className="chat-stop">stopped: {turn.stopReason}</span>}
              <button
                type="button"
                className="chat-trace"
                onClick={() => traceTurn(i)}
                disabled={running || tracing}
                aria-label={`Trace turn ${i + 1}`}
                title={turn.role === 'user' ? 'Trace the templated conversation up to this message, with the assistant opening' : 'Trace the templated conversation up to and including this reply'}
              >
                {tracing && traced === i ? 'Tracing…' : 'Trace this turn'}
              </button>
            </div>
            <pre className="chat-content">{turn.content}</pre>
          </li>
        ))}
        {streaming && (
          <li className="chat-turn assistant pending" data-role="assistant" aria-live="polite" data-testid="chat-streaming">
            <div className="chat-turn-head">
              <span className="chat-role">Model</span>
              <span className="chat-stop">
                {streaming.tokens} tokens · {streaming.tokensPerSecond.toFixed(1)} tokens/s
              </span>
            </div>
            <pre className="chat-content">{streaming.output}</pre>
          </li>
        )}
      </ol>
      <textarea
        value={draft}
        onChange={(e) => setDraft(e.target.value)}
        onKeyDown={onKeyDown}
        rows={2}
        aria-label="Chat message"
        placeholder="Message… (Enter to send, Shift+Enter for a new line)"
      />
      <div className="settings">
        {number('maxTokens', 'Max tokens', { min: 1, max: 100000, step: 1 })}
        {number('temperature', 'Temperature', { min: 0, max: 5, step: 0.05 })}
        {number('seed', 'Seed', { min: 0, step: 1 })}
      </div>
      <div className="actions">
        {running ? (
          <button type="button" onClick={stop}>
            Stop
          </button>
        ) : (
          <button type="button" className="primary" onClick={send}>
            Send
          </button>
        )}
        <button type="button" onClick={clear} disabled={replying || turns.length === 0}>
          Clear conversation
        </button>
      </div>
      {error && (
        <p className="error" role="alert" data-testid="chat-error">
          {error}
        </p>
      )}
      <details className="chat-rendered">
        <summary>Rendered prompt (what the next reply is generated from)</summary>
        {'text' in rendered ? (
          <pre className="output" data-testid="chat-rendered">
            {rendered.text}
          </pre>
        ) : (
          <p className="error">{rendered.error}</p>
        )}
      </details>
    </section>
  );
}
