import { selectNotices, useStudio } from '../store';

export function Notices() {
  const notices = useStudio(selectNotices);
  const dismiss = useStudio((s) => s.dismiss);
  if (notices.length === 0) return null;
  return (
    <div className="notices" role="alert">
      {notices.map((n) => (
        <div key={n.id} className={`notice ${n.kind}`}>
          <span>{n.text}</span>
          <button type="button" aria-label="Dismiss" onClick={() => dismiss(n.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
