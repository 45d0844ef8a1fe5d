/**
 * How devices and their entities are named, shared by every context that receives, stores
 * or serves them (devices, ingestion, timeseries, the HTTP schemas), so none of them has to
 * import another context for it.
 *
 * A device has two identifiers, and code names them apart: `deviceId` is the physical id
 * (the string below: MQTT client id, topic segment, InfluxDB tag), `devicePk` the registry
 * row's number (the API's `{id}`). Wire names follow the published contract instead.
 */

/** The physical id: the device's MQTT client id and username, and AWS IoT's thing name. */
export const DEVICE_ID_PATTERN = /^[a-zA-Z0-9:_-]{1,128}$/;

/** The most devices one bulk registration takes (`POST /api/devices/bulk`). */
export const MAX_BULK_DEVICES = 10_000;

export const MAX_ENTITY_ID_LENGTH = 100;
export const ENTITY_ID_PATTERN = new RegExp(`^[a-zA-Z0-9_-]{1,${MAX_ENTITY_ID_LENGTH}}$`);
// "model": devices/<id>/model/set and .../model/state carry edge models.
export const RESERVED_ENTITY_IDS = ['status', 'discovery', 'telemetry', 'model'] as const;
export const ENTITY_TYPES = ['switch', 'sensor', 'number', 'text'] as const;
export type EntityType = (typeof ENTITY_TYPES)[number];
