import { useCallback, useEffect, useState, type DragEvent } from 'react';
import type { EngineClient } from '../engine-client';
import type { Host } from '../host';
import { selectSidebarOpen, useStudio } from '../store';
import { MainArea } from './MainArea';
import { Notices } from './Notices';
import { Sidebar } from './Sidebar';
import { StatusBar } from './StatusBar';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function App({ host, engine }: { host: Host; engine: EngineClient }) {
  const sidebarOpen = useStudio(selectSidebarOpen);
  const [dragging, setDragging] = useState(false);

  const openModel = useCallback(() => {
    const { notify, selectModel } = useStudio.getState();
    host.api.openModelDialog().then(
      (entry) => entry && selectModel(entry.id),
      (error: unknown) => notify('error', message(error)),
    );
  }, [host]);

  // Keyboard: Ctrl/Cmd+O opens a model, Ctrl/Cmd+B toggles the sidebar (the desktop menu sends
  // the same commands, so in Electron the menu's accelerators win and these do not fire twice).
  useEffect(() => {
    if (host.shell === 'desktop') return;
    const onKey = (event: KeyboardEvent) => {
      if (!(event.ctrlKey || event.metaKey)) return;
      if (event.key === 'o') {
        event.preventDefault();
        openModel();
      } else if (event.key === 'b') {
        event.preventDefault();
        useStudio.getState().toggleSidebar();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [host, openModel]);

  useEffect(
    () =>
      host.api.on('menuCommand', (command) => {
        if (command === 'open-model') openModel();
        else if (command === 'toggle-sidebar') useStudio.getState().toggleSidebar();
      }),
    [host, openModel],
  );

  const onDrop = useCallback(
    (event: DragEvent) => {
      event.preventDefault();
      setDragging(false);
      const files = [...event.dataTransfer.files];
      if (files.length === 0) return;
      const { notify, selectModel } = useStudio.getState();
      host.openDropped(files).then(
        (entries) => entries[0] && selectModel(entries[0].id),
        (error: unknown) => notify('error', message(error)),
      );
    },
    [host],
  );

  return (
    <div
      className={`app${sidebarOpen ? '' : ' sidebar-hidden'}${dragging ? ' dragging' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
    >
      {sidebarOpen && <Sidebar onOpen={openModel} />}
      <MainArea host={host} engine={engine} />
      <StatusBar />
      <Notices />
    </div>
  );
}
