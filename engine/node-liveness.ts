/**
 * Whether a registered node is a live process. Kept apart from the runner so front doors can ask without
 * loading the runner's pool and probes.
 */
import { isProcessAlive, localHostIdentity } from './process-info.js';
import type { NodeRecord } from './store/store.js';

/** How long a run's lease lasts; a node whose heartbeat is older than this is presumed dead. */
export const defaultLeaseMs = 30_000;

/** A node row that belongs to a live process on this host (heartbeat fresh, and its pid is that process). */
export function isLiveLocalNode(node: NodeRecord, now: number, leaseMs: number = defaultLeaseMs, host: string = localHostIdentity()): boolean {
  if (node.host !== host) return false;
  if (now - node.heartbeatAt > leaseMs) return false;
  return isProcessAlive(node.pid, node.pidStart);
}
