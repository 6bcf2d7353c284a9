/**
 * The frame of a causal-tool panel (receptive field, logit lens, attribution, patching, steering)
 * inside its PanelFrame: a labelled section (busy while its work runs) with a heading, and the row
 * of controls (Controls) that each panel fills.
 */
import type { ReactNode, Ref } from 'react';

export interface AnalysisSectionProps {
  label: string;
  testId: string;
  title: ReactNode;
  busy?: boolean;
  /** The section's element (measured for the width of a chart). */
  boxRef?: Ref<HTMLElement>;
  children: ReactNode;
}

export function AnalysisSection({ label, testId, title, busy, boxRef, children }: AnalysisSectionProps) {
  return (
    <section ref={boxRef} aria-label={label} data-testid={testId} aria-busy={busy} style={{ display: 'flex', flexDirection: 'column', gap: 4, fontSize: 12 }}>
      <h4 style={{ margin: '8px 0 0' }}>{title}</h4>
      {children}
    </section>
  );
}

/** A panel's row of controls (selectors, inputs, run and export buttons), wrapping. */
export function Controls({ children }: { children: ReactNode }) {
  return (
    <div className="actions" style={{ flexWrap: 'wrap' }}>
      {children}
    </div>
  );
}
