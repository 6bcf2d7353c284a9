/** The colormap choice of a heatmap panel (a labelled native <select>). */
import { COLORMAPS, type ColormapName } from './colormaps';

export function ColormapSelect({ value, onChange, label }: { value: ColormapName; onChange(name: ColormapName): void; label: string }) {
  return (
    <label className="setting">
      <span>Colormap</span>
      <select aria-label={label} value={value} onChange={(e) => onChange(e.target.value as ColormapName)}>
        {COLORMAPS.map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
    </label>
  );
}
