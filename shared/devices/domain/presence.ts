/**
 * How the platform decides a device has gone when nobody told it so. A device's status
 * comes from its own `online` and from its last will, but Mosquitto sends no last will
 * when the broker itself is stopped, and a device that never comes back would then stay
 * online. An online device silent for `factor` reporting intervals (its own, when its
 * discovery announces `report_interval_s`, else `defaultReportIntervalS`) after the last
 * time its last-seen could have been written (ingestion writes it at most every
 * `lastSeenWriteS` while a device keeps sending) is marked offline.
 */
export interface SilencePolicy {
  factor: number;
  defaultReportIntervalS: number;
  lastSeenWriteS: number;
}

/** How long a device reporting every `reportIntervalS` may stay silent and still be online. */
export function silenceLimitMs(policy: SilencePolicy, reportIntervalS?: number | null): number {
  return (
    (policy.factor * (reportIntervalS ?? policy.defaultReportIntervalS) + policy.lastSeenWriteS) *
    1000
  );
}

export interface SilencedDevice {
  tenantId: number;
  devicePk: number;
  lastSeenMs: number | null;
}

/** Port: the registry across tenants, for the scheduled sweep. */
export interface PresenceStore {
  /** Marks offline every online device silent beyond `silenceLimitMs` at `atMs`. */
  markSilentOffline(atMs: number, policy: SilencePolicy): Promise<SilencedDevice[]>;
}

/** The scheduled silence sweep (run every minute with the time-driven alarm rules). */
export class PresenceSweep {
  constructor(
    private readonly store: PresenceStore,
    private readonly policy: SilencePolicy,
  ) {}

  run(nowMs: number): Promise<SilencedDevice[]> {
    return this.store.markSilentOffline(nowMs, this.policy);
  }
}
