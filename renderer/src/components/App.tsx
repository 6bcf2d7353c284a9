import { useCallback, useEffect, useState, type DragEvent } from 'react';
import type { EngineClient } from '../engine-client';
import type { Host } from '../host';
import type { ModelEntry } from '../../../app/contract';
import { selectSidebarOpen, useStudio } from '../store';
import { MainArea } from './MainArea';
import { Notices } from './Notices';
import { Sidebar } from './Sidebar';
import { StatusBar } from './StatusBar';
import { openDroppedSession } from '../session/open';
import { GetModels } from '../hub/GetModels';
import { useHubDownloadsOpen } from '../hub/use-hub-opens';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Notices the host queued while opening (web mode: a model it could not keep for the next visit). */
const showNotices = (host: Host) =>
  void host.api.getNotices().then(
    (notices) => notices.forEach((n) => useStudio.getState().notify('info', n)),
    () => undefined,
  );

export function App({ host, engine }: { host: Host; engine: EngineClient }) {
  const sidebarOpen = useStudio(selectSidebarOpen);
  const [dragging, setDragging] = useState(false);
  const [hubOpen, setHubOpen] = useState(false);
  const closeHub = useCallback(() => setHubOpen(false), []);
  useHubDownloadsOpen(host);

  const openModel = useCallback(() => {
    const { notify, selectModel } = useStudio.getState();
    host.api.openModelDialog().then(
      (entry) => {
        if (entry) selectModel(entry.id);
        showNotices(host);
      },
      (error: unknown) => notify('error', message(error)),
    );
  }, [host]);

  const removeModel = useCallback(
    (model: ModelEntry) => {
      host.api.removeModel(model.id).then(
        (models) => {
          useStudio.getState().setModels(models);
          useStudio.getState().notify('info', `${model.name} was removed from the list (its files are not touched).`);
        },
        (error: unknown) => useStudio.getState().notify('error', message(error)),
      );
    },
    [host],
  );

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
      // A session or an exported trace opens as such; anything else is a model.
      openDroppedSession(files).then((handled) => (handled ? [] : host.openDropped(files))).then(
        (entries) => {
          if (entries[0]) selectModel(entries[0].id);
          showNotices(host);
        },
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
      {sidebarOpen && <Sidebar onOpen={openModel} onRemove={removeModel} onGetModels={() => setHubOpen(true)} />}
      <MainArea host={host} engine={engine} />
      <StatusBar />
      <Notices />
      {hubOpen && <GetModels host={host} onClose={closeHub} />}
    </div>
  );
}
