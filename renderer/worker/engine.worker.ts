/// <reference lib="webworker" />
/** The engine's worker: owns the GPUDevice, answers the UI's typed requests. */
import { Engine } from '../../app/engine/engine';
import type { EngineMessage, EngineRequest } from '../../app/engine/protocol';

declare const self: DedicatedWorkerGlobalScope;

const post = (message: EngineMessage) => self.postMessage(message);
const engine = new Engine(self.navigator.gpu, (event) => post({ type: 'event', event }), self.navigator.userAgent, (url, init) =>
  self.fetch(url, init),
);

self.addEventListener('message', (message: MessageEvent<EngineRequest>) => {
  void engine.handle(message.data).then((response) => post({ type: 'response', response }));
});
