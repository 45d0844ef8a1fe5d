import type { AlarmLiveEvent } from '../../shared/alarms/adapters/live-alarms.ts';
import type { components } from './api-types.ts';

/**
 * The HTTP API's shapes as the dashboard reads them: names for the components of the
 * generated API types (./api-types.ts, from the OpenAPI document; `npm run api:types`).
 */
type Schemas = components['schemas'];

export type Role = Schemas['Role'];
export type PlanName = Schemas['PlanName'];
export type User = Schemas['User'];
export type Tenant = Schemas['Tenant'];
export type Plan = Schemas['Plan'];
export type TenantOverview = Schemas['TenantOverview'];
export type Profile = Schemas['Profile'];
export type AccessToken = Schemas['AccessToken'];
export type Device = Schemas['Device'];
export type Entity = Schemas['Entity'];
export type EntityType = Entity['entity_type'];
export type DeviceDetail = Schemas['DeviceDetail'];
export type Value = Schemas['ReadingValue'];
export type Latest = Schemas['LatestReading'];
export type Credentials = Schemas['Credentials'];
export type Point = Schemas['Point'];
export type Telemetry = Schemas['Telemetry'];
export type CommandStatus = Schemas['CommandStatus'];
export type Command = Schemas['Command'];
/** One score of the plan's detector that was anomalous. */
export type Anomaly = Schemas['Prediction'];

/**
 * What the WebSocket API pushes (DESIGN.md section 5); not an HTTP answer, so not in the
 * OpenAPI document.
 */
export type LiveEvent =
  | {
      type: 'readings';
      device_id: number;
      readings: Array<{ entity_id: string; value: Value; time: string }>;
    }
  | { type: 'status'; device_id: number; status: 'online' | 'offline'; time: string }
  | AlarmLiveEvent;
export type Alarm = Schemas['Alarm'];
export type AlarmRule = Schemas['AlarmRule'];
export type AlarmDetail = Schemas['AlarmDetail'];
export type AuditEntry = Schemas['AuditEntry'];
