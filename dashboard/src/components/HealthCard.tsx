import { useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import { useApp } from '../context.ts';
import { absoluteTime, timeUntil } from '../format.ts';
import {
  formatRul,
  type Health,
  type MaintenanceEvent,
  type MaintenanceKind,
  recordMaintenance,
  STATUS_LABELS,
  setLimit,
} from '../maintenance.ts';
import type { Entity } from '../types.ts';
import { Notice, NumberField } from './ui.tsx';

export type HealthState =
  | { kind: 'loading' }
  | { kind: 'hidden' }
  | { kind: 'upgrade'; message: string }
  | { kind: 'shown'; health: Health; events: MaintenanceEvent[] };

const KINDS: MaintenanceKind[] = ['failure', 'repair', 'replacement', 'inspection'];

/**
 * The device's health: its status, the remaining useful life its fleet's model predicts
 * (with the 10-90% interval), when each limited sensor's trend crosses its limit, and the
 * maintenance log. Owners and admins record events and set limits here.
 */
export function HealthCard({
  deviceId,
  state,
  entities,
  canWrite,
  now,
  onChanged,
}: {
  deviceId: number;
  state: HealthState;
  entities: Entity[];
  canWrite: boolean;
  now: number;
  onChanged: () => void;
}) {
  if (state.kind === 'loading' || state.kind === 'hidden') return null;
  if (state.kind === 'upgrade') {
    return (
      <section aria-labelledby="health-title" class="section">
        <h2 id="health-title">Health</h2>
        <Notice tone="info" title="Predictive maintenance is not in your plan">
          {state.message}
        </Notice>
      </section>
    );
  }
  const { health, events } = state;
  const numeric = entities.filter((e) => e.entity_type === 'sensor' || e.entity_type === 'number');
  return (
    <section aria-labelledby="health-title" class="section health-card" data-status={health.status}>
      <div class="section-head">
        <h2 id="health-title">Health</h2>
        <span class={`badge badge-health-${health.status}`}>{STATUS_LABELS[health.status]}</span>
      </div>
      <dl class="facts">
        <div data-rul>
          <dt>Remaining useful life</dt>
          <dd>
            {health.rul ? (
              <>
                <strong class="mono">{formatRul(health.rul)}</strong>{' '}
                <span class="muted">
                  (10-90%: {Math.round(health.rul.low)}-{Math.round(health.rul.high)}{' '}
                  {health.rul.unit}; model {health.rul.model_version})
                </span>
              </>
            ) : (
              <span class="muted">
                No prediction: the fleet of this device type has no active model yet (it needs at
                least 4 recorded failures, and a model that beats the fleet's mean life).
              </span>
            )}
          </dd>
        </div>
      </dl>
      {health.thresholds.length > 0 && (
        <table class="table thresholds" aria-label="Limits and their forecasts">
          <thead>
            <tr>
              <th scope="col">Entity</th>
              <th scope="col">Limit</th>
              <th scope="col">Trend</th>
              <th scope="col">Crosses (10-90%)</th>
            </tr>
          </thead>
          <tbody>
            {health.thresholds.map((t) => (
              <tr key={t.entity_id} data-entity-id={t.entity_id}>
                <td>{entities.find((e) => e.entity_id === t.entity_id)?.name ?? t.entity_id}</td>
                <td class="mono">
                  {[
                    t.limit.below !== null ? `≥ ${t.limit.below}` : null,
                    t.limit.above !== null ? `≤ ${t.limit.above}` : null,
                  ]
                    .filter(Boolean)
                    .join(', ')}
                </td>
                <td>{t.trend}</td>
                <td>
                  {t.crossed ? (
                    <strong>Crossed now</strong>
                  ) : t.eta ? (
                    <span title={`${absoluteTime(t.eta.low)} – ${absoluteTime(t.eta.high)}`}>
                      {timeUntil(t.eta.time, now)} ({absoluteTime(t.eta.low)} –{' '}
                      {absoluteTime(t.eta.high)})
                    </span>
                  ) : (
                    <span class="muted">not on the current trend</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canWrite && numeric.length > 0 && (
        <LimitForm deviceId={deviceId} entities={numeric} health={health} onSaved={onChanged} />
      )}
      <h3>Maintenance log</h3>
      {events.length === 0 ? (
        <p class="muted small">No maintenance recorded.</p>
      ) : (
        <ul class="maintenance-log">
          {events.slice(0, 20).map((event) => (
            <li key={event.id} data-kind={event.kind}>
              <strong>{event.kind}</strong>{' '}
              <time dateTime={event.time}>{absoluteTime(event.time)}</time>
              {event.note && <span class="muted"> · {event.note}</span>}
            </li>
          ))}
        </ul>
      )}
      {canWrite && <EventForm deviceId={deviceId} onSaved={onChanged} />}
    </section>
  );
}

function LimitForm({
  deviceId,
  entities,
  health,
  onSaved,
}: {
  deviceId: number;
  entities: Entity[];
  health: Health;
  onSaved: () => void;
}) {
  const { api } = useApp();
  const [entityId, setEntityId] = useState(entities[0]?.entity_id ?? '');
  const current = health.thresholds.find((t) => t.entity_id === entityId)?.limit;
  const [above, setAbove] = useState('');
  const [below, setBelow] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      await setLimit(api, deviceId, entityId, {
        ...(above.trim() ? { above: Number(above) } : {}),
        ...(below.trim() ? { below: Number(below) } : {}),
      });
      setAbove('');
      setBelow('');
      onSaved();
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label="Set a limit">
      <label>
        Limit on{' '}
        <select value={entityId} onChange={(e) => setEntityId(e.currentTarget.value)}>
          {entities.map((e) => (
            <option key={e.entity_id} value={e.entity_id}>
              {e.name}
            </option>
          ))}
        </select>
      </label>
      <NumberField label="at most" value={above} current={current?.above} onInput={setAbove} />
      <NumberField label="at least" value={below} current={current?.below} onInput={setBelow} />
      <button type="submit" class="button">
        {above.trim() || below.trim() ? 'Set limit' : 'Remove limit'}
      </button>
      {error && <Notice tone="error">{error}</Notice>}
    </form>
  );
}

function EventForm({ deviceId, onSaved }: { deviceId: number; onSaved: () => void }) {
  const { api } = useApp();
  const [kind, setKind] = useState<MaintenanceKind>('inspection');
  const [time, setTime] = useState('');
  const [note, setNote] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      await recordMaintenance(api, deviceId, {
        kind,
        // datetime-local is the browser's local time.
        ...(time ? { time: new Date(time).toISOString() } : {}),
        ...(note.trim() ? { note: note.trim() } : {}),
      });
      setTime('');
      setNote('');
      onSaved();
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label="Record maintenance">
      <label>
        Record{' '}
        <select value={kind} onChange={(e) => setKind(e.currentTarget.value as MaintenanceKind)}>
          {KINDS.map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
      </label>
      <label>
        at{' '}
        <input type="datetime-local" value={time} onInput={(e) => setTime(e.currentTarget.value)} />
      </label>
      <label>
        note{' '}
        <input
          type="text"
          maxLength={2000}
          value={note}
          onInput={(e) => setNote(e.currentTarget.value)}
        />
      </label>
      <button type="submit" class="button">
        Record
      </button>
      {error && <Notice tone="error">{error}</Notice>}
    </form>
  );
}
