import type { AnomalyEvent } from '../../anomalies/domain/ports.ts';
import type { EntityType } from '../../identifiers.ts';
import type { Reading } from '../../timeseries/reading.ts';
import type { RejectionReason } from './rejection.ts';

export type ReadingValue = number | boolean | string;

/** A reading as the device sent it, before the registry has vouched for its entity. */
export interface RawReading {
  entityId: string;
  value: ReadingValue;
  /** Epoch ms: the device's timestamp, else the rule's receive time. */
  timeMs: number;
  /**
   * Set when the device gave no timestamp: the reading's item in its message (0 for a state
   * message), so that readings sharing a receive time can be told apart (see ingestion).
   */
  untimedItem?: number;
  commandId?: string;
}

/** What ingestion knows about a publishing device, resolved from the registry. */
export interface DeviceContext {
  /** Registry row id (the API's `{id}`). */
  devicePk: number;
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
  value: ReadingValue;
  commandId?: string;
}

export interface RejectionCount {
  reason: RejectionReason;
  device_id: string | null;
  count: number;
  last_topic: string;
}

export interface LateRollupHour {
  tenantId: number;
  policy: string;
  /** Epoch ms of the hour's start. */
  hourMs: number;
}

/** A change worth telling connected dashboards about. */
export type LiveEvent =
  | {
      type: 'readings';
      device_id: number;
      readings: Array<{ entity_id: string; value: ReadingValue; time: string }>;
    }
  | { type: 'status'; device_id: number; status: 'online' | 'offline'; time: string }
  /** Sent by the scheduled anomaly scoring, through the same connections. */
  | AnomalyEvent;

/** One device's part of a batch, once its readings are stored. */
export interface StoredDeviceReadings {
  device: DeviceContext;
  /** Stored readings, in the order the device sent them. */
  readings: Reading[];
}

/** What a batch stored, grouped by device: handed to `StoredReadingsListener`. */
export interface StoredBatch {
  /** Epoch ms at which the batch was taken in (the service's clock). */
  nowMs: number;
  devices: StoredDeviceReadings[];
}

/** One message of a batch, with its place in the stream when it has one. */
export interface InboundRecord {
  event: unknown;
  /**
   * The record's position in its stream shard (the Kinesis sequence number), or its index
   * in the batch: it tells apart readings without a device timestamp.
   */
  ordinal?: number;
}

export interface IngestionSummary {
  messages: number;
  readings: number;
  confirmedCommands: number;
  rejected: Partial<Record<RejectionReason, number>>;
}

export interface BatchOutcome {
  summary: IngestionSummary;
  /** Indices of the messages an infrastructure failure kept from being stored, ascending. */
  failed: number[];
  /** The first such failure. */
  error: unknown;
}
