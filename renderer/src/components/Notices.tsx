/**
 * The notices: a strip above the main area (a row of the app's grid, so it pushes the content
 * down instead of covering it). Info notices go by themselves (notices.ts INFO_NOTICE_MS); errors
 * stay until dismissed or until another model is selected (when they are about a model). The same
 * text again shows once, with a count.
 */
import { useEffect } from 'react';
import { nextExpiry } from '../notices';
import { selectNotices, useStudio } from '../store';

export function Notices() {
  const notices = useStudio(selectNotices);
  const dismiss = useStudio((s) => s.dismiss);
  useEffect(() => {
    const due = nextExpiry(notices);
    if (due === null) return;
    const timer = setTimeout(() => useStudio.getState().expireNotices(), Math.max(0, due - Date.now()) + 20);
    return () => clearTimeout(timer);
  }, [notices]);
  if (notices.length === 0) return null;
  return (
    <div className="notices" role="alert" data-testid="notices">
      {notices.map((n) => (
        <div key={n.id} className={`notice ${n.kind}`} data-count={n.count}>
          <span>{n.text}</span>
          {n.count > 1 && (
            <span className="notice-count" aria-label={`${n.count} times`}>
              ×{n.count}
            </span>
          )}
          <button type="button" aria-label="Dismiss" onClick={() => dismiss(n.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
