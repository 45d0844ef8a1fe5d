import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import {
  mayWrite,
  useApp,
  useInterval,
  useLiveEvents,
  useNow,
  useWatchedDevices,
} from '../context.ts';
import { formatValue } from '../format.ts';
import { applyToDevice, applyToEntities, ENTITY_ORDER, eachLimited } from '../live-state.ts';
import { devicesRul, formatRul, type Rul } from '../maintenance.ts';
import { href } from '../router.ts';
import type { Credentials, Device, Entity } from '../types.ts';
import { BulkRegisterForm } from './BulkRegister.tsx';
import { CredentialsPanel, RegisterDeviceForm } from './RegisterDevice.tsx';
import { TenantExport } from './TenantExport.tsx';
import { EmptyState, ErrorPanel, LastSeen, Loading, Notice, StatusBadge } from './ui.tsx';

const MAX_VALUES_ON_CARD = 6;
const POLL_MS = 15_000;
// Live events come only for the devices shown; one registered elsewhere is found by this.
const NEW_DEVICES_MS = 60_000;

export function DevicesPage() {
  const { api, profile, live } = useApp();
  const [devices, setDevicesState] = useState<Device[] | null>(null);
  const [entities, setEntitiesState] = useState<Record<number, Entity[]>>({});
  // Mirrors of the state: several WebSocket messages can arrive before the next render.
  const devicesRef = useRef(devices);
  const entitiesRef = useRef(entities);
  const setDevices = useCallback((update: (current: Device[] | null) => Device[] | null) => {
    devicesRef.current = update(devicesRef.current);
    setDevicesState(devicesRef.current);
  }, []);
  const setEntities = useCallback(
    (update: (current: Record<number, Entity[]>) => Record<number, Entity[]>) => {
      entitiesRef.current = update(entitiesRef.current);
      setEntitiesState(entitiesRef.current);
    },
    [],
  );
  const [error, setError] = useState<string | null>(null);
  // Each device's remaining useful life; null while unknown or when the plan has none.
  const [rul, setRul] = useState<Map<number, Rul | null> | null>(null);
  const [order, setOrder] = useState<'registered' | 'rul'>('registered');
  const [registering, setRegistering] = useState(false);
  const [uploading, setUploading] = useState(false);
  const [issued, setIssued] = useState<{ device: Device; credentials: Credentials } | null>(null);
  const now = useNow();
  const canWrite = mayWrite(profile.user.role);
  const reloading = useRef(new Set<number>());

  const loadDetail = useCallback(
    async (id: number) => {
      if (reloading.current.has(id)) return;
      reloading.current.add(id);
      try {
        const detail = await api.device(id);
        setEntities((current) => ({ ...current, [id]: detail.entities }));
        setDevices(
          (current) => current?.map((d) => (d.id === id ? { ...d, ...detail.device } : d)) ?? null,
        );
      } catch {
        // The card keeps what it had; the list itself reports failures.
      } finally {
        reloading.current.delete(id);
      }
    },
    [api, setDevices, setEntities],
  );

  const listing = useRef(false);
  const load = useCallback(async () => {
    // Live events for a device the page does not know yet ask for a reload each; one is enough.
    if (listing.current) return;
    listing.current = true;
    try {
      const list = await api.devices();
      setDevices(() => list);
      setError(null);
      // Predictive maintenance is plan-gated: without it the list simply has no RUL to sort by.
      void devicesRul(api).then(
        (found) => setRul(new Map(found.map((d) => [d.id, d.rul]))),
        () => setRul(null),
      );
      await eachLimited(list, 4, (device) => loadDetail(device.id));
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      listing.current = false;
    }
  }, [api, loadDetail, setDevices]);

  useEffect(() => {
    void load();
  }, [load]);

  useInterval(() => void load(), POLL_MS, live !== 'open');

  useWatchedDevices(devices?.map((device) => device.id) ?? []);
  useInterval(
    () =>
      void api.devices().then(
        (list) => {
          const known = new Set(devicesRef.current?.map((device) => device.id));
          if (list.some((device) => !known.has(device.id))) void load();
        },
        () => {},
      ),
    NEW_DEVICES_MS,
    live === 'open',
  );

  useLiveEvents((events) => {
    const current = devicesRef.current;
    if (!current) return;
    const known = new Set(current.map((d) => d.id));
    if (events.some((event) => !known.has(event.device_id))) {
      void load();
      return;
    }
    setDevices((list) => list?.map((device) => applyToDevice(device, events)) ?? null);
    const stale: number[] = [];
    setEntities((all) => {
      let next = all;
      for (const device of current) {
        const list = all[device.id];
        if (!list) continue;
        const applied = applyToEntities(device.id, list, events);
        if (applied.unknown.length > 0) stale.push(device.id);
        if (applied.entities !== list) next = { ...next, [device.id]: applied.entities };
      }
      return next;
    });
    for (const id of stale) void loadDetail(id);
  });

  const registered = (device: Device, credentials: Credentials) => {
    setRegistering(false);
    setIssued({ device, credentials });
    setDevices((current) => [...(current ?? []).filter((d) => d.id !== device.id), device]);
    setEntities((current) => ({ ...current, [device.id]: [] }));
  };

  const online = devices?.filter((d) => d.status === 'online').length ?? 0;
  const registerButton = canWrite && !registering && !issued && !uploading && (
    <span class="form-actions">
      <button type="button" class="button button-primary" onClick={() => setRegistering(true)}>
        Register device
      </button>
      <button type="button" class="button" id="bulk-upload" onClick={() => setUploading(true)}>
        Register from a file
      </button>
    </span>
  );

  return (
    <>
      <div class="page-head">
        <div>
          <h1>Devices</h1>
          {devices && devices.length > 0 && (
            <p class="muted" aria-live="polite">
              {devices.length} {devices.length === 1 ? 'device' : 'devices'} · {online} online
            </p>
          )}
        </div>
        {devices && devices.length > 0 && <TenantExport />}
        {devices && devices.length > 0 && registerButton}
      </div>
      {issued && (
        <CredentialsPanel
          device={issued.device}
          credentials={issued.credentials}
          onDone={() => setIssued(null)}
        />
      )}
      {registering && (
        <RegisterDeviceForm onRegistered={registered} onCancel={() => setRegistering(false)} />
      )}
      {uploading && (
        <BulkRegisterForm
          onRegistered={() => {
            setUploading(false);
            void load();
          }}
          onCancel={() => setUploading(false)}
        />
      )}
      {error && <ErrorPanel message={error} onRetry={() => void load()} />}
      {!devices && !error && <Loading label="Loading devices…" />}
      {devices?.length === 0 && !registering && !issued && !uploading && (
        <EmptyState title="No devices yet" action={registerButton}>
          {canWrite ? (
            <p>
              Register your first device to get its MQTT credential, then flash it onto an ESP32 or
              start a virtual device with <code>npm run device</code>.
            </p>
          ) : (
            <p>
              Your role can view devices but not add them. Ask an owner or admin to register one.
            </p>
          )}
        </EmptyState>
      )}
      {devices && devices.length > 0 && rul && (
        <label class="sort-control">
          Order{' '}
          <select
            value={order}
            onChange={(e) => setOrder(e.currentTarget.value as 'registered' | 'rul')}
          >
            <option value="registered">as registered</option>
            <option value="rul">remaining useful life, shortest first</option>
          </select>
        </label>
      )}
      {devices && devices.length > 0 && (
        <ul class="device-grid" aria-label="Devices">
          {(order === 'rul' && rul ? byRul(devices, rul) : devices).map((device) => (
            <DeviceCard
              key={device.id}
              device={device}
              entities={entities[device.id]}
              now={now}
              rul={rul?.get(device.id) ?? null}
            />
          ))}
        </ul>
      )}
      {!canWrite && devices && devices.length > 0 && (
        <Notice tone="info">
          You have the viewer role: you can watch devices but not register or command them.
        </Notice>
      )}
    </>
  );
}

/** Shortest remaining life first; devices without a prediction after them, as registered. */
function byRul(devices: Device[], rul: Map<number, Rul | null>): Device[] {
  const lifeOf = (device: Device) => rul.get(device.id)?.value ?? Number.POSITIVE_INFINITY;
  return [...devices].sort((a, b) => {
    const [x, y] = [lifeOf(a), lifeOf(b)];
    return x === y ? 0 : x < y ? -1 : 1;
  });
}

function DeviceCard({
  device,
  entities,
  now,
  rul,
}: {
  device: Device;
  entities: Entity[] | undefined;
  now: number;
  rul: Rul | null;
}) {
  const sorted = entities
    ? [...entities].sort((a, b) => ENTITY_ORDER[a.entity_type] - ENTITY_ORDER[b.entity_type])
    : [];
  const shown = sorted.slice(0, MAX_VALUES_ON_CARD);
  return (
    <li class="device-card" data-device-id={device.device_id}>
      <div class="device-card-head">
        <h2>
          <a href={href({ name: 'device', id: device.id })}>{device.name}</a>
        </h2>
        <StatusBadge status={device.status} />
      </div>
      <p class="device-meta">
        <span class="mono">{device.device_id}</span>
        <span>{device.type}</span>
        {device.location && <span>{device.location}</span>}
      </p>
      <p class="device-seen">
        <LastSeen iso={device.last_seen} now={now} />
      </p>
      {rul && (
        <p class="device-rul small" data-rul={rul.value}>
          Remaining useful life <strong class="mono">{formatRul(rul)}</strong>{' '}
          <span class="muted">
            ({Math.round(rul.low)}-{Math.round(rul.high)})
          </span>
        </p>
      )}
      {entities === undefined ? (
        <p class="muted small">Loading values…</p>
      ) : entities.length === 0 ? (
        <p class="muted small">
          No entities yet: they appear when the device connects and announces them.
        </p>
      ) : (
        <dl class="values">
          {shown.map((entity) => (
            <div key={entity.entity_id} class="value-row" data-entity-id={entity.entity_id}>
              <dt>{entity.name}</dt>
              <dd class="mono">{formatValue(entity.latest?.value, entity.unit)}</dd>
            </div>
          ))}
          {sorted.length > shown.length && (
            <div class="value-row more">
              <dt>
                <a href={href({ name: 'device', id: device.id })}>
                  {sorted.length - shown.length} more on the device page
                </a>
              </dt>
            </div>
          )}
        </dl>
      )}
    </li>
  );
}
