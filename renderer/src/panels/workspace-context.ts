/**
 * What a PanelFrame inside the Workspace needs to offer its move buttons and drag grip: which ways
 * the panel can go, a way to move it, and a way to start dragging it. Outside a Workspace there is none, and frames show no move buttons.
 */
import { createContext, useContext } from 'react';
import type { MoveDirection } from './layout';

export interface WorkspaceMoves {
  canMove(id: string, direction: MoveDirection): boolean;
  move(id: string, direction: MoveDirection): void;
  /** Starts dragging panel `id` (a pointer pressed on its header's grip) to another place. */
  startDrag(id: string, x: number, y: number): void;
}

export const WorkspaceContext = createContext<WorkspaceMoves | null>(null);

export const useWorkspaceMoves = (): WorkspaceMoves | null => useContext(WorkspaceContext);
