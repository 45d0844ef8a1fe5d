import { useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import { useApp } from '../context.ts';
import type { Entity } from '../types.ts';
import { Notice, NumberField } from './ui.tsx';

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
      <NumberField label="from" value={min} current={current?.min} required onInput={setMin} />
      <NumberField label="to" value={max} current={current?.max} required onInput={setMax} />
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
