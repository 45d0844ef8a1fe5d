import { useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import { useApp } from '../context.ts';
import {
  deployEdgeModel,
  EDGE_STATUS_LABELS,
  type EdgeModel,
  type TrainedModelSummary,
} from '../edge.ts';
import { absoluteTime, formatValue, relativeTime } from '../format.ts';
import { Notice } from './ui.tsx';

export type EdgeState =
  | { kind: 'loading' }
  | { kind: 'hidden' }
  | { kind: 'upgrade'; message: string }
  | { kind: 'shown'; edge: EdgeModel; models: TrainedModelSummary[] };

/**
 * Edge deployment: which anomaly model the device runs itself (it keeps scoring when the
 * network is down), whether it confirmed the last one sent, and the anomalies it found.
 * Owners and admins send the active model, or an earlier one to roll back.
 */
export function EdgeModelCard({
  deviceId,
  state,
  canWrite,
  now,
  onChanged,
}: {
  deviceId: number;
  state: EdgeState;
  canWrite: boolean;
  now: number;
  onChanged: () => void;
}) {
  const { api } = useApp();
  const [choice, setChoice] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (state.kind === 'loading' || state.kind === 'hidden') return null;
  if (state.kind === 'upgrade') {
    return (
      <section aria-labelledby="edge-title" class="section">
        <h2 id="edge-title">Edge model</h2>
        <Notice tone="info" title="Edge deployment is not in your plan">
          {state.message}
        </Notice>
      </section>
    );
  }
  const { edge, models } = state;
  const selected = models.find((m) => `${m.entity_id} ${m.version}` === choice) ?? models[0];
  const deploy = async (event: Event) => {
    event.preventDefault();
    if (!selected) return;
    setBusy(true);
    setError(null);
    try {
      await deployEdgeModel(
        api,
        deviceId,
        selected.entity_id,
        selected.status === 'active' ? undefined : selected.version,
      );
      onChanged();
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="edge-title" class="section edge-card" data-status={edge.status}>
      <div class="section-head">
        <h2 id="edge-title">Edge model</h2>
        <span class={`badge badge-edge-${edge.status}`}>{EDGE_STATUS_LABELS[edge.status]}</span>
      </div>
      <dl class="facts">
        <div data-running>
          <dt>Runs on the device</dt>
          <dd>
            {edge.running ? (
              <>
                <span class="mono">{edge.running.version}</span>{' '}
                <span class="muted" title={absoluteTime(edge.running.reported_at)}>
                  (checksum {edge.running.checksum}, said so{' '}
                  {relativeTime(edge.running.reported_at, now)})
                </span>
              </>
            ) : (
              <span class="muted">No model: the device runs no detector of its own.</span>
            )}
          </dd>
        </div>
        {edge.status !== 'none' && (
          <div data-last-sent>
            <dt>Last sent</dt>
            <dd>
              <span class="mono">{edge.version}</span> for {edge.entity_id}, {edge.size_bytes} bytes
              ({edge.weight_encoding} weights), checksum <span class="mono">{edge.checksum}</span>
              {edge.status_reason && <span class="muted"> — {edge.status_reason}</span>}
            </dd>
          </div>
        )}
      </dl>
      {edge.anomalies.length > 0 && (
        <>
          <h3>Anomalies the device found</h3>
          <ul class="plain-list" data-edge-anomalies>
            {edge.anomalies.slice(0, 5).map((a) => (
              <li key={`${a.entity_id}-${a.time}`}>
                <span title={absoluteTime(a.time)}>{relativeTime(a.time, now)}</span>: {a.entity_id}{' '}
                {formatValue(a.value)} (score {a.score.toFixed(2)}
                {a.reason ? `, ${a.reason}` : ''})
              </li>
            ))}
          </ul>
        </>
      )}
      {canWrite &&
        (models.length === 0 ? (
          <p class="muted">
            No trained model for this device yet: models are trained from a sensor's history.
          </p>
        ) : (
          <form class="inline-form" onSubmit={deploy}>
            <label>
              Model{' '}
              <select
                value={selected ? `${selected.entity_id} ${selected.version}` : ''}
                onChange={(e) => setChoice((e.target as HTMLSelectElement).value)}
              >
                {models.map((m) => (
                  <option key={m.id} value={`${m.entity_id} ${m.version}`}>
                    {m.entity_id}: {m.version} (
                    {m.status === 'active' ? 'active' : 'earlier: roll back'})
                  </option>
                ))}
              </select>
            </label>
            <button type="submit" disabled={busy || !selected}>
              {busy ? 'Sending…' : 'Deploy to device'}
            </button>
          </form>
        ))}
      {error && (
        <Notice tone="error" title="Not sent">
          {error}
        </Notice>
      )}
    </section>
  );
}
