/** What an analysis panel is doing (a status line while the engine works) and its last error (an alert). */
export function PanelStatus({ busy, error, testId }: { busy: string | null; error: string | null; testId: string }) {
  return (
    <>
      {busy && (
        <div role="status" className="load-text" data-testid={`${testId}-busy`}>
          {busy}
        </div>
      )}
      {error && (
        <p role="alert" className="load-text error" data-testid={`${testId}-error`}>
          {error}
        </p>
      )}
    </>
  );
}
