import { useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import { useApp } from '../context.ts';
import type { Entity } from '../types.ts';
import { Notice } from './ui.tsx';

/**
 * Sets or clears a sensor or number entity's measuring range (the span its sensor measures),
 * which the advanced anomaly detection uses. A range set here wins over the one the device
 * announces; clearing it brings the device's back.
 */
export function MeasuringRangeForm({
  deviceId,
  entities,
  onSaved,
}: {
  deviceId: number;
  entities: Entity[];
  onSaved: () => void;
}) {
  const { api } = useApp();
  const [entityId, setEntityId] = useState(entities[0]?.entity_id ?? '');
  const [min, setMin] = useState('');
  const [max, setMax] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const current = entities.find((e) => e.entity_id === entityId)?.measuring_range;
  const save = async (body: { min: number; max: number } | Record<string, never>) => {
    setBusy(true);
    setError(null);
    try {
      await api.call('put', '/api/devices/{id}/entities/{entity_id}/measuring-range', {
        params: { id: String(deviceId), entity_id: entityId },
        body,
      });
      setMin('');
      setMax('');
      onSaved();
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  const submit = (event: Event) => {
    event.preventDefault();
    void save({ min: Number(min), max: Number(max) });
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label="Set a measuring range">
      <label>
        Measuring range of{' '}
        <select value={entityId} onChange={(e) => setEntityId(e.currentTarget.value)}>
          {entities.map((e) => (
            <option key={e.entity_id} value={e.entity_id}>
              {e.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        from{' '}
        <input
          type="number"
          step="any"
          required
          value={min}
          placeholder={current?.min.toString() ?? ''}
          onInput={(e) => setMin(e.currentTarget.value)}
        />
      </label>
      <label>
        to{' '}
        <input
          type="number"
          step="any"
          required
          value={max}
          placeholder={current?.max.toString() ?? ''}
          onInput={(e) => setMax(e.currentTarget.value)}
        />
      </label>
      <button type="submit" class="button" disabled={busy}>
        Set range
      </button>
      {current?.source === 'user' && (
        <button type="button" class="button" disabled={busy} onClick={() => void save({})}>
          Clear (use the device's)
        </button>
      )}
      {error && <Notice tone="error">{error}</Notice>}
    </form>
  );
}
