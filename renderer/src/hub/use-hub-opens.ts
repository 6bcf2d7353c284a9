/**
 * A finished Hub download is opened: its model (already in the library: main/hub.ts or web mode
 * added it) is selected, with a notice — also when the Get models dialog was closed meanwhile.
 */
import { useEffect } from 'react';
import type { Host } from '../host';
import { useStudio } from '../store';

export function useHubDownloadsOpen(host: Host): void {
  useEffect(() => {
    const opened = new Set<string>();
    return host.api.on('hubJob', (job) => {
      if (job.state !== 'done' || !job.modelId || opened.has(job.id)) return;
      opened.add(job.id);
      const { selectModel, notify } = useStudio.getState();
      selectModel(job.modelId);
      notify('info', `${job.repo} (${job.label}) is downloaded and open.`);
    });
  }, [host]);
}
