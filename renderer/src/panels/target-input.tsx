/**
 * The target token of the logit lens and the attribution: a box taking a token id or one of the
 * model's labels (studio.json), empty for the panel's default (the prediction); Enter runs.
 */

/** The id typed: null when empty (the default), else the label's id or the number; an error for anything else. */
export function parseTarget(typed: string, labels?: readonly string[]): { id: number | null } | { error: string } {
  const text = typed.trim();
  if (text === '') return { id: null };
  const byLabel = labels ? labels.indexOf(text) : -1;
  if (byLabel >= 0) return { id: byLabel };
  const id = Number(text);
  return Number.isInteger(id) && id >= 0 ? { id } : { error: `Target “${text}” is neither a token id nor a label of this model.` };
}

export function TargetInput({ label, value, placeholder, title, onChange, onEnter }: { label: string; value: string; placeholder: string; title: string; onChange(text: string): void; onEnter(): void }) {
  return (
    <label className="setting" title={title}>
      <span>Target</span>
      <input
        aria-label={label}
        placeholder={placeholder}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') onEnter();
        }}
        style={{ width: 110 }}
      />
    </label>
  );
}
