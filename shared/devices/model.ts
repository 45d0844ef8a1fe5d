/** The physical id: the device's MQTT client id and username, and AWS IoT's thing name. */
export const DEVICE_ID_PATTERN = /^[a-zA-Z0-9:_-]{1,128}$/;
export const MAX_ENTITY_ID_LENGTH = 100;
export const ENTITY_ID_PATTERN = new RegExp(`^[a-zA-Z0-9_-]{1,${MAX_ENTITY_ID_LENGTH}}$`);
export const RESERVED_ENTITY_IDS = ['status', 'discovery', 'telemetry'] as const;
export const ENTITY_TYPES = ['switch', 'sensor', 'number', 'text'] as const;
export type EntityType = (typeof ENTITY_TYPES)[number];

export interface Device {
  id: number;
  tenant_id: number;
  device_id: string;
  name: string;
  type: string;
  location: string | null;
  status: 'online' | 'offline';
  discovery_mode: string;
  config: Record<string, unknown> | null;
  last_seen: string | null;
  created_at: string;
  updated_at: string;
  entity_count: number;
}

export interface Entity {
  id: number;
  entity_id: string;
  entity_type: EntityType;
  name: string;
  unit: string | null;
  icon: string | null;
  config: Record<string, unknown> | null;
  discovery_mode: 'auto' | 'manual';
  created_at: string;
}

export interface NewDevice {
  device_id: string;
  name: string;
  type: string;
  location?: string | null;
  config?: Record<string, unknown> | null;
}

export type DevicePatch = Partial<Pick<NewDevice, 'name' | 'type' | 'location' | 'config'>>;
