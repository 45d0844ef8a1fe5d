import type { Device, Entity, LiveEvent } from './types.ts';

/** Applies live events to a device; returns the same object when nothing changed. */
export function applyToDevice(device: Device, events: LiveEvent[]): Device {
  let next = device;
  for (const event of events) {
    if (event.device_id !== device.id) continue;
    if (event.type === 'status') {
      next = { ...next, status: event.status, last_seen: later(next.last_seen, event.time) };
    } else if (event.type === 'readings') {
      // Other events (alarms) say nothing of the device's connection.
      const newest = event.readings.reduce<string | null>((acc, r) => later(acc, r.time), null);
      // A device that reports is connected, even if its status message is still on the way.
      next = { ...next, status: 'online', last_seen: later(next.last_seen, newest) };
    }
  }
  return next;
}

/**
 * Applies readings to a device's entities. `unknown` lists entity ids the device reported
 * but the page does not know yet (it just announced discovery), so the caller can reload.
 */
export function applyToEntities(
  deviceId: number,
  entities: Entity[],
  events: LiveEvent[],
): { entities: Entity[]; unknown: string[] } {
  const byId = new Map(entities.map((entity) => [entity.entity_id, entity]));
  const unknown: string[] = [];
  let changed = false;
  for (const event of events) {
    if (event.type !== 'readings' || event.device_id !== deviceId) continue;
    for (const reading of event.readings) {
      const entity = byId.get(reading.entity_id);
      if (!entity) {
        unknown.push(reading.entity_id);
        continue;
      }
      if (entity.latest && Date.parse(entity.latest.time) > Date.parse(reading.time)) continue;
      byId.set(reading.entity_id, {
        ...entity,
        latest: { value: reading.value, time: reading.time },
      });
      changed = true;
    }
  }
  return {
    entities: changed ? entities.map((e) => byId.get(e.entity_id) ?? e) : entities,
    unknown,
  };
}

function later(a: string | null, b: string | null): string | null {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

/** Runs `task` over `items` with at most `limit` at once. */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export const ENTITY_ORDER: Record<Entity['entity_type'], number> = {
  sensor: 0,
  switch: 1,
  number: 2,
  text: 3,
};
