/**
 * What a PanelFrame inside the Workspace needs to offer its move buttons: which ways the panel can
 * go and a way to move it. Outside a Workspace there is none, and frames show no move buttons.
 */
import { createContext, useContext } from 'react';
import type { MoveDirection } from './layout';

export interface WorkspaceMoves {
  canMove(id: string, direction: MoveDirection): boolean;
  move(id: string, direction: MoveDirection): void;
}

export const WorkspaceContext = createContext<WorkspaceMoves | null>(null);

export const useWorkspaceMoves = (): WorkspaceMoves | null => useContext(WorkspaceContext);
