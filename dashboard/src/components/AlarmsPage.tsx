import { useCallback, useEffect, useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import { mayWrite, useApp, useInterval, useLiveEvents } from '../context.ts';
import { absoluteTime, relativeTime } from '../format.ts';
import { href } from '../router.ts';
import type { Alarm } from '../types.ts';
import { EmptyState, ErrorPanel, Loading } from './ui.tsx';

const REFRESH_MS = 15_000;
/** Said on the window when this tab changed an alarm (an acknowledgement has no live event). */
const ALARMS_CHANGED = 'easysmart:alarms-changed';

/** Active alarms in the header, refreshed when a live alarm event arrives and every 15 s. */
export function ActiveAlarmsBadge() {
  const { api } = useApp();
  const [count, setCount] = useState(0);
  const load = useCallback(() => {
    api.call('get', '/api/alarms', { query: { status: 'active' } }).then(
      (answer) => setCount(answer.alarms.length),
      () => {},
    );
  }, [api]);
  useEffect(load, [load]);
  useEffect(() => {
    window.addEventListener(ALARMS_CHANGED, load);
    return () => window.removeEventListener(ALARMS_CHANGED, load);
  }, [load]);
  useInterval(load, REFRESH_MS, true);
  useLiveEvents((events) => {
    if (events.some((event) => event.type === 'alarm')) load();
  });
  if (count === 0) return null;
  return (
    <span class="badge badge-alarm" title={`${count} active alarm${count === 1 ? '' : 's'}`}>
      {count}
    </span>
  );
}

/** Alarms, active first: acknowledge (owners and admins), and each one's history on demand. */
export function AlarmsPage() {
  const { api, profile } = useApp();
  const [alarms, setAlarms] = useState<Alarm[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<'' | 'active' | 'acknowledged' | 'cleared'>('');
  const [busy, setBusy] = useState<number | null>(null);
  const load = useCallback(() => {
    api.call('get', '/api/alarms', { query: status ? { status } : {} }).then(
      (answer) => {
        setError(null);
        setAlarms(answer.alarms);
      },
      (failure: unknown) => setError(describeError(failure)),
    );
  }, [api, status]);
  useEffect(load, [load]);
  useInterval(load, REFRESH_MS, true);
  useLiveEvents((events) => {
    if (events.some((event) => event.type === 'alarm')) load();
  });

  const acknowledge = (id: number) => {
    setBusy(id);
    api
      .call('post', '/api/alarms/{id}/ack', { params: { id: String(id) } })
      .then(
        () => {
          load();
          window.dispatchEvent(new Event(ALARMS_CHANGED));
        },
        (failure: unknown) => setError(describeError(failure)),
      )
      .finally(() => setBusy(null));
  };

  return (
    <>
      <div class="page-head">
        <div>
          <h1>Alarms</h1>
          <p class="muted">Active first, the most severe on top.</p>
        </div>
        <label>
          Show{' '}
          <select
            value={status}
            onChange={(event) =>
              setStatus((event.target as HTMLSelectElement).value as typeof status)
            }
          >
            <option value="">all</option>
            <option value="active">active</option>
            <option value="acknowledged">acknowledged</option>
            <option value="cleared">cleared</option>
          </select>
        </label>
      </div>
      {error && <ErrorPanel message={error} onRetry={load} />}
      {!alarms && !error && <Loading label="Loading alarms…" />}
      {alarms && alarms.length === 0 && (
        <EmptyState title="No alarms">
          <p>Alarm rules are made on a device's page, under Alarm rules (owners and admins).</p>
        </EmptyState>
      )}
      {alarms && alarms.length > 0 && (
        <table class="table alarms" aria-label="Alarms">
          <thead>
            <tr>
              <th>Severity</th>
              <th>Alarm</th>
              <th>Device</th>
              <th>Value</th>
              <th>Count</th>
              <th>Since</th>
              <th>Status</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {alarms.map((alarm) => (
              <tr key={alarm.id} class={`alarm-${alarm.status}`}>
                <td>
                  <span class={`severity severity-${alarm.severity}`}>{alarm.severity}</span>
                </td>
                <td>
                  {alarm.rule_name}
                  {alarm.reason && <div class="muted small">{alarm.reason}</div>}
                </td>
                <td>
                  <a href={href({ name: 'device', id: alarm.device_id })}>#{alarm.device_id}</a>
                  {alarm.entity_id && <span class="muted"> · {alarm.entity_id}</span>}
                </td>
                <td class="mono">{JSON.stringify(alarm.value)}</td>
                <td class="mono">{alarm.count}</td>
                <td title={absoluteTime(alarm.started_at)}>{relativeTime(alarm.started_at)}</td>
                <td>
                  {alarm.status}
                  {alarm.acknowledged_at && (
                    <div class="muted small" title={absoluteTime(alarm.acknowledged_at)}>
                      by user {alarm.acknowledged_by}
                    </div>
                  )}
                </td>
                <td>
                  {alarm.status === 'active' && mayWrite(profile.user.role) && (
                    <button
                      type="button"
                      class="button"
                      disabled={busy === alarm.id}
                      onClick={() => acknowledge(alarm.id)}
                    >
                      Acknowledge
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
