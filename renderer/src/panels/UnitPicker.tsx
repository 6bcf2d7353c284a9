/**
 * Hidden attention's unit: the mean over every Δ column (channel or head), or one of them by
 * index. Shared by the matrix panel (HiddenAttentionPanel) and a long trace's row
 * (LongAttentionRow); `label` names the controls ("Hidden attention", "Hidden attention row").
 */
/** A hidden-attention unit: one Δ column by index, or the mean over all of them. */
export type Unit = number | 'mean';

/** How a unit reads: "mean over channels", "head 3". */
export const unitText = (u: Unit, name: string) => (u === 'mean' ? `mean over ${name}s` : `${name} ${u}`);

export function UnitPicker({
  label,
  unitName,
  width,
  kind,
  index,
  onKind,
  onIndex,
}: {
  label: string;
  unitName: 'channel' | 'head';
  /** Δ columns: the index runs 0..width − 1. */
  width: number;
  kind: 'mean' | 'one';
  index: number;
  onKind: (kind: 'mean' | 'one') => void;
  onIndex: (index: number) => void;
}) {
  return (
    <>
      <label className="setting">
        <span>Over</span>
        <select aria-label={`${label} unit`} value={kind} onChange={(e) => onKind(e.target.value as 'mean' | 'one')}>
          <option value="mean">mean over {unitName}s</option>
          <option value="one">one {unitName}</option>
        </select>
      </label>
      <label className="setting">
        <span>{unitName === 'head' ? 'Head' : 'Channel'}</span>
        <input
          type="number"
          aria-label={`${label} ${unitName}`}
          min={0}
          max={width - 1}
          step={1}
          value={index}
          disabled={kind === 'mean'}
          onChange={(e) => {
            const v = Number(e.target.value);
            if (Number.isInteger(v) && v >= 0 && v < width) onIndex(v);
          }}
          style={{ width: 80 }}
        />
      </label>
    </>
  );
}
