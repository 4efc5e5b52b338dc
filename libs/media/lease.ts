// How fast a call whose media process died is noticed. One figure, CALL_LEASE_MS, is the promise
// ("such a call is ended within the lease"); the rest follows from it, the same on every process:
// - a media process writes a heartbeat for all of its calls every fifth of the lease;
// - a call whose heartbeat is older than three fifths of the lease is stale (two heartbeats may be
//   missed, e.g. a slow database, before a live call could be taken for an orphan);
// - every media and worker process sweeps for stale calls every fifth of the lease.
// Worst case from the death to the call ended in the record: stale + one sweep period (4/5 of the
// lease) plus the sweep's own queries. Twilio's status callback usually ends it sooner (a second or
// so: the stream's socket drops when the process dies, Twilio hangs up and reports the call).

export const DEFAULT_CALL_LEASE_MS = 15_000;

export interface LeaseTimings {
  leaseMs: number;
  heartbeatMs: number;
  staleAfterMs: number;
  sweepIntervalMs: number;
}

export function leaseTimings(leaseMs: number = DEFAULT_CALL_LEASE_MS): LeaseTimings {
  return {
    leaseMs,
    heartbeatMs: Math.round(leaseMs / 5),
    staleAfterMs: Math.round((leaseMs * 3) / 5),
    sweepIntervalMs: Math.round(leaseMs / 5),
  };
}
