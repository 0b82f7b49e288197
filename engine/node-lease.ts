/**
 * A runner node's hold on its work (DESIGN §3): it heartbeats and renews the leases of its runs every third of
 * a lease, with lease times taken from the database's clock. When it has not managed to renew for a whole
 * lease period (its database is locked or unreachable, the process was stopped), another node may already own
 * its runs, so it fences itself without waiting to be told: it kills its agents and claims nothing until a
 * renewal succeeds again. The fence is judged on this process's own clock, which needs no database.
 */
import type { AgentRuns } from './agent-runs.js';
import { every, type Clock } from './clock.js';
import { ifCommitUnknown } from './errors.js';
import type { Logger } from './logger.js';
import type { NodeRecord, Store } from './store/store.js';

/** What a node's lease needs and whom it tells. */
export interface NodeLeaseDeps {
  store: Store;
  clock: Clock;
  nodeId: string;
  leaseMs: number;
  runs: AgentRuns;
  log: Logger;
  /** The node's row, to register again when another node took this one for dead and removed it. */
  record(): NodeRecord;
  /** Stop this node's agent of a run it no longer owns. */
  revoke(taskId: string, attempt: number, reason: string): void;
  /** The node fenced itself (true) or renewed again (false). */
  fence(fenced: boolean): void;
}

/** Heartbeat, lease renewal and self-fencing of one node. */
export class NodeLease {
  #lastRenewedAt: number;
  #fenced = false;
  readonly #stops: Array<() => Promise<void>> = [];

  constructor(private readonly deps: NodeLeaseDeps) {
    this.#lastRenewedAt = deps.clock.now();
  }

  /** Whether the node is fenced now. */
  get fenced(): boolean {
    return this.#fenced;
  }

  start(): void {
    const { clock, leaseMs, log } = this.deps;
    const logged = (what: string, work: () => Promise<void>) => () => work().catch((error: unknown) => log.error(`${what} failed`, { error: String(error) }));
    this.#stops.push(every(clock, leaseMs / 3, logged('lease renewal', () => this.renew())));
    // Checked apart from the renewal, which may itself be what hangs on a locked database.
    this.#stops.push(every(clock, Math.max(50, leaseMs / 10), async () => this.#checkFence()));
  }

  /** Stop renewing; resolves once a renewal in flight has finished. */
  async stop(): Promise<void> {
    await Promise.all(this.#stops.splice(0).map((stop) => stop()));
  }

  /** Heartbeat and renew the leases of this node's runs; runs it owned but lost are revoked. */
  async renew(): Promise<void> {
    const { store, nodeId, runs, leaseMs } = this.deps;
    const alive = await store.heartbeatNode(nodeId);
    if (!alive) {
      // Another node took this one for dead (it stalled past its lease) and took its runs; carry on as a node.
      this.deps.log.warn('node row disappeared; another node took this one for dead; registering again');
      await store.registerNode(this.deps.record());
    }
    const before = runs.list();
    const owned = await ifCommitUnknown(store.renewLeases(nodeId, leaseMs, before), () => null);
    if (!owned) {
      // The answer was lost (a server that stopped at that moment): renewed or not, the next beat renews again,
      // and until one is answered the fence counts from the last renewal known.
      this.deps.log.info('the answer to a lease renewal was lost; renewing again at the next beat');
      return;
    }
    this.#lastRenewedAt = this.deps.clock.now();
    for (const run of runs.revoked(before, owned)) this.deps.revoke(run.id, run.attempt, 'no longer owned');
    if (this.#fenced) {
      this.#fenced = false;
      this.deps.log.warn('leases renewed again; claiming again');
      this.deps.fence(false);
    }
  }

  #checkFence(): void {
    const silentFor = this.deps.clock.now() - this.#lastRenewedAt;
    if (this.#fenced || silentFor <= this.deps.leaseMs) return;
    this.#fenced = true;
    this.deps.log.error('could not renew leases for a whole lease period; killing this node’s agents and claiming nothing until it can', {
      silentForMs: silentFor,
      runs: this.deps.runs.size,
    });
    this.deps.fence(true);
    for (const run of this.deps.runs.list()) this.deps.revoke(run.id, run.attempt, 'node fenced: lease not renewed');
  }
}
