import type { EntityType } from '../identifiers.ts';
import type { Discovery, RejectionReason } from './inbound.ts';

/** What ingestion knows about a publishing device, resolved from the registry. */
export interface DeviceContext {
  /** Registry row id (the API's `{id}`). */
  id: number;
  deviceId: string;
  tenantId: number;
  plan: string;
  retentionPolicy: string;
  /** null: kept forever. */
  retentionDays: number | null;
  /** The plan's anomaly detection: none, basic (Professional) or advanced (Industrial). */
  anomalyDetection: 'none' | 'basic' | 'advanced';
  entities: Record<string, { type: EntityType; config: Record<string, unknown> | null }>;
}

export interface SeenUpdate {
  device: DeviceContext;
  /** Set when a status message (or the LWT) said so, or a reading implied it. */
  online?: boolean;
  /** Epoch ms of the latest message from the device itself; absent for the LWT. */
  lastSeenMs?: number;
}

export interface CommandConfirmation {
  entityId: string;
  value: number | boolean | string;
  commandId?: string;
}

export interface RejectionCount {
  reason: RejectionReason;
  device_id: string | null;
  count: number;
  last_topic: string;
}

/** Port: the registry as ingestion sees it. The PostgreSQL adapter sits beside it. */
export interface DeviceDirectory {
  resolve(deviceId: string): Promise<DeviceContext | null>;
  /** Upserts the announced entities in auto mode; entities a user manages are left alone. */
  applyDiscovery(device: DeviceContext, discovery: Discovery): Promise<void>;
  recordSeen(updates: SeenUpdate[]): Promise<void>;
  /** Marks matching pending commands confirmed; returns who triggered each, by entity. */
  confirmCommands(
    device: DeviceContext,
    confirmations: CommandConfirmation[],
  ): Promise<Map<string, string>>;
  recordRejections(counts: RejectionCount[]): Promise<void>;
  /**
   * Bumped by every plan change: when it moves, cached device contexts (plan, tier) are
   * stale. Read once per batch, so a change reaches every function instance at once.
   */
  planVersion(): Promise<number>;
  /** Hours that received readings too late for the rollup function's recent window. */
  markLateRollups(hours: LateRollupHour[]): Promise<void>;
}

export interface LateRollupHour {
  tenantId: number;
  policy: string;
  /** Epoch ms of the hour's start. */
  hourMs: number;
}
