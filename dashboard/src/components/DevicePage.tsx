import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, describeError } from '../api.ts';
import {
  mayWrite,
  useApp,
  useInterval,
  useLiveEvents,
  useNow,
  useWatchedDevices,
} from '../context.ts';
import { deployableModels, edgeModel } from '../edge.ts';
import { absoluteTime, formatValue, relativeTime } from '../format.ts';
import { applyToDevice, applyToEntities } from '../live-state.ts';
import { health as loadHealthOf, maintenanceEvents } from '../maintenance.ts';
import {
  type PatternSegment,
  patternColour,
  patternName,
  patterns as patternsOf,
  patternTimeline,
} from '../patterns.ts';
import { DEFAULT_RANGE, describeSource, type HistoryRange, RANGES } from '../ranges.ts';
import { href, navigate } from '../router.ts';
import { appendReading, EMPTY_SERIES, fromPoints, type Series } from '../series.ts';
import type { Alarm, AlarmRule, Anomaly, Device, Entity } from '../types.ts';
import { AlarmRulesCard } from './AlarmRulesCard.tsx';
import { NumberControl, SwitchControl, TextControl } from './Controls.tsx';
import { EdgeModelCard, type EdgeState } from './EdgeModelCard.tsx';
import { HealthCard, type HealthState } from './HealthCard.tsx';
import { MeasuringRangeForm } from './MeasuringRangeForm.tsx';
import { PatternsCard, type PatternsState } from './PatternsCard.tsx';
import {
  type AlarmBand,
  type AnomalyMark,
  type PatternBand,
  SensorChart,
  type ThresholdMark,
} from './SensorChart.tsx';
import { EmptyState, ErrorPanel, LastSeen, Loading, Notice, StatusBadge } from './ui.tsx';

const POLL_MS = 15_000;
const NO_MARKS: AnomalyMark[] = [];

type AnomalyState =
  | { kind: 'loading' }
  | { kind: 'hidden' }
  | { kind: 'upgrade'; message: string }
  | {
      kind: 'shown';
      marks: Record<string, AnomalyMark[]>;
      total: number;
    };

interface History {
  range: HistoryRange;
  fromMs: number;
  toMs: number;
  source: string | null;
  series: Record<string, Series>;
  loading: boolean;
  error: string | null;
}

export function DevicePage({ id }: { id: number }) {
  const { api, profile, live } = useApp();
  const canWrite = mayWrite(profile.user.role);
  const now = useNow();
  const [device, setDevice] = useState<Device | null>(null);
  const [entities, setEntities] = useState<Entity[]>([]);
  const [error, setError] = useState<{ message: string; notFound: boolean } | null>(null);
  const [history, setHistory] = useState<History>(() => ({
    range: DEFAULT_RANGE,
    fromMs: Date.now() - DEFAULT_RANGE.ms,
    toMs: Date.now(),
    source: null,
    series: {},
    loading: true,
    error: null,
  }));
  const [anomalies, setAnomalies] = useState<AnomalyState>({ kind: 'loading' });
  const [health, setHealth] = useState<HealthState>({ kind: 'loading' });
  const [editing, setEditing] = useState(false);
  const entitiesRef = useRef(entities);
  entitiesRef.current = entities;
  const historyRef = useRef(history);
  historyRef.current = history;

  const sensors = useMemo(() => entities.filter((e) => e.entity_type === 'sensor'), [entities]);
  const sensorKey = sensors.map((s) => s.entity_id).join(',');

  const fetching = useRef(false);
  const loadDevice = useCallback(async () => {
    // Readings for entities not yet known arrive every few hundred ms during discovery.
    if (fetching.current) return;
    fetching.current = true;
    try {
      const detail = await api.device(id);
      setDevice(detail.device);
      setEntities(detail.entities);
      setError(null);
    } catch (failure) {
      setError({
        message: describeError(failure),
        notFound: failure instanceof ApiError && failure.status === 404,
      });
    } finally {
      fetching.current = false;
    }
  }, [api, id]);

  useEffect(() => {
    void loadDevice();
  }, [loadDevice]);

  const loadHistory = useCallback(
    async (range: HistoryRange) => {
      const toMs = Date.now();
      const fromMs = toMs - range.ms;
      setHistory((h) => ({ ...h, range, fromMs, toMs, loading: true, error: null }));
      const ids = sensorKey ? sensorKey.split(',') : [];
      if (ids.length === 0) {
        setHistory((h) => ({ ...h, loading: false, series: {}, source: null }));
        return;
      }
      try {
        const telemetry = await api.telemetry(id, {
          entityIds: ids,
          from: new Date(fromMs),
          to: new Date(toMs),
          every: range.every,
        });
        if (historyRef.current.range.key !== range.key) return;
        const series: Record<string, Series> = {};
        for (const s of telemetry.series) series[s.entity_id] = fromPoints(s.points);
        setHistory((h) => ({ ...h, loading: false, source: telemetry.source, series }));
      } catch (failure) {
        if (historyRef.current.range.key !== range.key) return;
        setHistory((h) => ({ ...h, loading: false, error: describeError(failure) }));
      }
    },
    [api, id, sensorKey],
  );

  useEffect(() => {
    void loadHistory(historyRef.current.range);
  }, [loadHistory]);

  // Always asked, never inferred from the plan: the API knows trials and plan changes, and
  // its refusal names the plan that includes the feature.
  const loadAnomalies = useCallback(async () => {
    const { fromMs, toMs } = historyRef.current;
    try {
      const found = await api.anomalies(id, new Date(fromMs), new Date(toMs));
      setAnomalies({ kind: 'shown', marks: groupAnomalies(found), total: found.length });
    } catch (failure) {
      if (failure instanceof ApiError && failure.code === 'plan_required') {
        setAnomalies({ kind: 'upgrade', message: failure.message });
      } else {
        // No anomaly service in this deployment (404) or it failed: charts stand on their own.
        setAnomalies({ kind: 'hidden' });
      }
    }
  }, [api, id]);

  useEffect(() => {
    void loadAnomalies();
  }, [loadAnomalies, history.range.key]);

  // As with anomalies: asked, and the API's refusal says which plan has it.
  const loadHealth = useCallback(async () => {
    try {
      const [answer, events] = await Promise.all([
        loadHealthOf(api, id),
        maintenanceEvents(api, id),
      ]);
      setHealth({ kind: 'shown', health: answer, events });
    } catch (failure) {
      if (failure instanceof ApiError && failure.code === 'plan_required') {
        setHealth({ kind: 'upgrade', message: failure.message });
      } else setHealth({ kind: 'hidden' });
    }
  }, [api, id]);

  useEffect(() => {
    void loadHealth();
  }, [loadHealth]);
  // Predictions follow new reading windows; a minute is often enough to show them.
  useInterval(() => void loadHealth(), 60_000, health.kind === 'shown');

  const [edge, setEdge] = useState<EdgeState>({ kind: 'loading' });
  const loadEdge = useCallback(async () => {
    try {
      const [answer, models] = await Promise.all([edgeModel(api, id), deployableModels(api, id)]);
      setEdge({ kind: 'shown', edge: answer, models });
    } catch (failure) {
      if (failure instanceof ApiError && failure.code === 'plan_required') {
        setEdge({ kind: 'upgrade', message: failure.message });
      } else setEdge({ kind: 'hidden' });
    }
  }, [api, id]);
  useEffect(() => {
    void loadEdge();
  }, [loadEdge]);
  // A sent model is confirmed (or refused) by the device within seconds.
  useInterval(() => void loadEdge(), 3_000, edge.kind === 'shown' && edge.edge.status === 'sent');

  // Operating modes: the card, and each chart's mode strip over the range shown.
  const [modes, setModes] = useState<PatternsState>({ kind: 'loading' });
  const [segments, setSegments] = useState<PatternSegment[]>([]);
  const loadModes = useCallback(async () => {
    try {
      const answer = await patternsOf(api, id);
      setModes({ kind: 'shown', patterns: answer.patterns, current: answer.current_pattern });
      const { fromMs, toMs } = historyRef.current;
      setSegments(
        answer.patterns.length > 0
          ? await patternTimeline(api, id, new Date(fromMs), new Date(toMs))
          : [],
      );
    } catch (failure) {
      setSegments([]);
      if (failure instanceof ApiError && failure.code === 'plan_required') {
        setModes({ kind: 'upgrade', message: failure.message });
      } else if (failure instanceof ApiError && failure.code === 'range_too_long') {
        // The range holds more windows than a timeline covers: the strip is left out.
      } else setModes({ kind: 'hidden' });
    }
  }, [api, id]);
  useEffect(() => {
    void loadModes();
  }, [loadModes, history.range.key]);
  // The current mode follows the readings; a poll keeps the badge and the strip fresh.
  useInterval(() => void loadModes(), 30_000, modes.kind === 'shown');

  // The rules watching this device and its alarms: the rule editor, and bands on the charts.
  const [rules, setRules] = useState<AlarmRule[] | null>(null);
  const [alarms, setAlarms] = useState<Alarm[]>([]);
  const loadRules = useCallback(async () => {
    try {
      setRules((await api.call('get', '/api/alarm-rules')).rules);
    } catch {
      setRules(null);
    }
  }, [api]);
  const loadAlarms = useCallback(async () => {
    try {
      const answer = await api.call('get', '/api/alarms', {
        query: { device_id: String(id), limit: '200' },
      });
      setAlarms(answer.alarms);
    } catch {
      setAlarms([]);
    }
  }, [api, id]);
  useEffect(() => {
    void loadRules();
    void loadAlarms();
  }, [loadRules, loadAlarms]);
  useInterval(() => void loadAlarms(), POLL_MS, true);

  useInterval(() => void loadDevice(), POLL_MS, live !== 'open');
  useWatchedDevices([id]);

  useLiveEvents((events) => {
    const mine = events.filter((event) => event.device_id === id);
    if (mine.length === 0) return;
    if (mine.some((event) => event.type === 'alarm')) void loadAlarms();
    setDevice((d) => (d ? applyToDevice(d, mine) : d));
    const applied = applyToEntities(id, entitiesRef.current, mine);
    if (applied.unknown.length > 0) void loadDevice();
    if (applied.entities !== entitiesRef.current) {
      entitiesRef.current = applied.entities;
      setEntities(applied.entities);
    }
    const sensorIds = new Set(
      entitiesRef.current.filter((e) => e.entity_type === 'sensor').map((e) => e.entity_id),
    );
    setHistory((h) => {
      const nowMs = Date.now();
      const series = { ...h.series };
      let changed = false;
      for (const event of mine) {
        if (event.type !== 'readings') continue;
        for (const reading of event.readings) {
          if (!sensorIds.has(reading.entity_id)) continue;
          const current = series[reading.entity_id] ?? EMPTY_SERIES;
          const next = appendReading(
            current,
            Date.parse(reading.time),
            reading.value,
            h.range,
            nowMs,
          );
          if (next !== current) {
            series[reading.entity_id] = next;
            changed = true;
          }
        }
      }
      return changed ? { ...h, series, toMs: nowMs, fromMs: nowMs - h.range.ms } : h;
    });
  });

  if (error) {
    return error.notFound ? (
      <EmptyState
        title="Device not found"
        action={
          <a class="button" href={href({ name: 'devices' })}>
            Back to devices
          </a>
        }
      >
        <p>It may have been removed, or it belongs to another organisation.</p>
      </EmptyState>
    ) : (
      <ErrorPanel message={error.message} onRetry={() => void loadDevice()} />
    );
  }
  if (!device) return <Loading label="Loading device…" />;

  const switches = entities.filter((e) => e.entity_type === 'switch');
  const numbers = entities.filter((e) => e.entity_type === 'number');
  const texts = entities.filter((e) => e.entity_type === 'text');
  const controls = { deviceId: id, canWrite, now, onSettled: () => void loadDevice() };

  return (
    <>
      <nav aria-label="Breadcrumb" class="crumbs">
        <a href={href({ name: 'devices' })}>Devices</a> <span aria-hidden="true">/</span>{' '}
        <span aria-current="page">{device.name}</span>
      </nav>
      <div class="page-head">
        <div>
          <h1 class="device-title">
            {device.name} <StatusBadge status={device.status} />
          </h1>
          <p class="device-meta">
            <span class="mono">{device.device_id}</span>
            <span>{device.type}</span>
            {device.location && <span>{device.location}</span>}
            <LastSeen iso={device.last_seen} now={now} />
          </p>
        </div>
        <DownloadButtons id={device.id} history={history} />
        {canWrite && !editing && (
          <button type="button" class="button button-ghost" onClick={() => setEditing(true)}>
            Edit details
          </button>
        )}
      </div>
      {editing && (
        <EditDevice
          device={device}
          onSaved={(saved) => {
            setDevice(saved);
            setEditing(false);
          }}
          onCancel={() => setEditing(false)}
        />
      )}
      {!canWrite && (
        <Notice tone="info">
          Your viewer role can watch this device but not send commands to it.
        </Notice>
      )}

      {entities.length === 0 ? (
        <EmptyState title="No entities announced yet">
          <p>
            Entities appear when the device connects and publishes its discovery message on{' '}
            <code>devices/{device.device_id}/discovery</code>. This page updates by itself.
          </p>
        </EmptyState>
      ) : (
        <>
          {switches.length + numbers.length + texts.length > 0 && (
            <section aria-labelledby="controls-title" class="section">
              <h2 id="controls-title">Controls</h2>
              <div class="control-grid">
                {switches.map((entity) => (
                  <SwitchControl key={entity.entity_id} entity={entity} {...controls} />
                ))}
                {numbers.map((entity) => (
                  <NumberControl key={entity.entity_id} entity={entity} {...controls} />
                ))}
                {texts.map((entity) => (
                  <TextControl key={entity.entity_id} entity={entity} {...controls} />
                ))}
              </div>
            </section>
          )}
          <HealthCard
            deviceId={id}
            state={health}
            entities={entities}
            canWrite={canWrite}
            now={now}
            onChanged={() => void loadHealth()}
          />
          <PatternsCard
            deviceId={id}
            state={modes}
            canWrite={canWrite}
            now={now}
            onChanged={() => void loadModes()}
          />
          <EdgeModelCard
            deviceId={id}
            state={edge}
            canWrite={canWrite}
            now={now}
            onChanged={() => void loadEdge()}
          />
          <AlarmRulesCard
            device={device}
            entities={entities}
            rules={rules}
            canWrite={canWrite}
            onChanged={() => {
              void loadRules();
              void loadAlarms();
            }}
          />
          {sensors.length > 0 && (
            <section aria-labelledby="sensors-title" class="section">
              <div class="section-head">
                <h2 id="sensors-title">Sensors</h2>
                <RangePicker
                  current={history.range}
                  onPick={(range) => void loadHistory(range)}
                  disabled={history.loading}
                />
              </div>
              <p class="small muted history-meta" aria-live="polite">
                {history.loading
                  ? 'Loading history…'
                  : history.source
                    ? `Last ${history.range.label} · mean per ${history.range.every}`
                    : ''}
                <span data-source={history.source ?? ''} class="source-tag">
                  {history.source && !history.loading
                    ? `source: ${describeSource(history.source)}`
                    : ''}
                </span>
              </p>
              {history.error && (
                <Notice
                  tone="error"
                  action={
                    <button
                      type="button"
                      class="button"
                      onClick={() => void loadHistory(history.range)}
                    >
                      Try again
                    </button>
                  }
                >
                  History did not load: {history.error}
                </Notice>
              )}
              <AnomalyNote state={anomalies} />
              <div class="sensor-grid">
                {sensors.map((entity) => (
                  <article
                    key={entity.entity_id}
                    class="sensor-card"
                    data-entity-id={entity.entity_id}
                  >
                    <header class="sensor-head">
                      <h3>
                        {entity.name}
                        {entity.measuring_range && (
                          <span
                            class="small muted measuring-range"
                            data-measuring-range={`${entity.measuring_range.min},${entity.measuring_range.max}`}
                            title={
                              entity.measuring_range.source === 'user'
                                ? 'Measuring range set for this entity; the advanced anomaly detection uses it'
                                : 'Measuring range the device announced; the advanced anomaly detection uses it'
                            }
                          >
                            {' '}
                            range {formatValue(entity.measuring_range.min, null)} to{' '}
                            {formatValue(entity.measuring_range.max, entity.unit)}
                          </span>
                        )}
                      </h3>
                      <div class="sensor-value">
                        <span class="big mono">
                          {formatValue(entity.latest?.value, entity.unit)}
                        </span>
                        <span class="small muted" title={absoluteTime(entity.latest?.time)}>
                          {entity.latest ? relativeTime(entity.latest.time, now) : 'no reading yet'}
                        </span>
                      </div>
                    </header>
                    <SensorChart
                      label={entity.name}
                      unit={entity.unit}
                      series={history.series[entity.entity_id] ?? EMPTY_SERIES}
                      fromSec={history.fromMs / 1000}
                      toSec={history.toMs / 1000}
                      anomalies={
                        anomalies.kind === 'shown'
                          ? (anomalies.marks[entity.entity_id] ?? NO_MARKS)
                          : NO_MARKS
                      }
                      threshold={thresholdMark(health, entity.entity_id)}
                      alarms={alarmBands(alarms, entity.entity_id, history.fromMs)}
                      alarmLimits={alarmLimits(rules, device, entity.entity_id)}
                      patterns={patternBands(modes, segments)}
                    />
                  </article>
                ))}
              </div>
              {canWrite && profile.tenant.effective_plan === 'industrial' && (
                <MeasuringRangeForm
                  deviceId={id}
                  entities={[...sensors, ...numbers]}
                  onSaved={() => void loadDevice()}
                />
              )}
            </section>
          )}
        </>
      )}
    </>
  );
}

/**
 * The periods the entity's alarms (and the device's own, such as offline) were open within
 * the range, for its chart's bands.
 */
function alarmBands(alarms: Alarm[], entityId: string, fromMs: number): AlarmBand[] {
  const bands: AlarmBand[] = [];
  for (const alarm of alarms) {
    if (alarm.entity_id !== null && alarm.entity_id !== entityId) continue;
    const end = alarm.cleared_at ? Date.parse(alarm.cleared_at) : null;
    if (end !== null && end < fromMs) continue;
    bands.push({
      from: Date.parse(alarm.started_at) / 1000,
      to: end === null ? null : end / 1000,
      severity: alarm.severity,
      label: alarm.rule_name,
    });
  }
  return bands;
}

/** The device's modes over the range, for every chart's strip. */
function patternBands(state: PatternsState, segments: PatternSegment[]): PatternBand[] {
  if (state.kind !== 'shown') return [];
  return segments.map((segment) => ({
    from: Date.parse(segment.from) / 1000,
    to: Date.parse(segment.to) / 1000,
    colour: patternColour(state.patterns, segment.pattern_id),
    label: patternName(state.patterns, segment.pattern_id),
    novel: segment.novel,
  }));
}

/** The limits of the enabled threshold rules on this entity of this device. */
function alarmLimits(rules: AlarmRule[] | null, device: Device, entityId: string): number[] {
  const limits: number[] = [];
  for (const rule of rules ?? []) {
    const applies =
      rule.device_id === device.id || (rule.device_id === null && rule.device_type === device.type);
    if (!applies || !rule.enabled || rule.entity_id !== entityId) continue;
    const c = rule.condition;
    if (c.type !== 'threshold') continue;
    for (const value of [c.value, c.low, c.high]) {
      if (typeof value === 'number' && !limits.includes(value)) limits.push(value);
    }
  }
  return limits;
}

/** The entity's limit and its forecast crossing, for its chart. */
function thresholdMark(state: HealthState, entityId: string): ThresholdMark | undefined {
  if (state.kind !== 'shown') return undefined;
  const forecast = state.health.thresholds.find((t) => t.entity_id === entityId);
  if (!forecast) return undefined;
  const sec = (iso: string) => Date.parse(iso) / 1000;
  return {
    above: forecast.limit.above,
    below: forecast.limit.below,
    eta: forecast.eta
      ? { t: sec(forecast.eta.time), low: sec(forecast.eta.low), high: sec(forecast.eta.high) }
      : null,
  };
}

function RangePicker({
  current,
  onPick,
  disabled,
}: {
  current: HistoryRange;
  onPick: (range: HistoryRange) => void;
  disabled: boolean;
}) {
  return (
    <fieldset class="segmented">
      <legend class="sr-only">History range</legend>
      {RANGES.map((range) => (
        <button
          key={range.key}
          type="button"
          aria-pressed={range.key === current.key}
          aria-label={`Show the last ${range.label}`}
          disabled={disabled && range.key !== current.key}
          onClick={() => onPick(range)}
        >
          {range.label}
        </button>
      ))}
    </fieldset>
  );
}

function AnomalyNote({ state }: { state: AnomalyState }) {
  if (state.kind === 'upgrade') {
    return (
      <Notice tone="info" title="Anomaly detection is not in your plan">
        {state.message.replace(/\.?$/, '.')} With it, unusual readings are marked on these charts.
        An owner can change the plan. <a href={href({ name: 'tenant' })}>See plan and limits</a>
      </Notice>
    );
  }
  if (state.kind === 'shown') {
    return (
      <p class="small muted anomaly-legend">
        <span class="anomaly-key" aria-hidden="true" />
        {state.total === 0
          ? 'Anomaly detection is on: nothing unusual in this range.'
          : `${state.total} ${state.total === 1 ? 'anomaly' : 'anomalies'} in this range, marked in red.`}
      </p>
    );
  }
  return null;
}

/** Each anomaly marks its entity's chart at the reading the detector scored. */
function groupAnomalies(anomalies: Anomaly[]): Record<string, AnomalyMark[]> {
  const grouped: Record<string, AnomalyMark[]> = {};
  for (const anomaly of anomalies) {
    const time = Date.parse(anomaly.time);
    if (Number.isNaN(time)) continue;
    const list = grouped[anomaly.entity_id] ?? [];
    list.push({
      t: time / 1000,
      v: anomaly.value,
      label: anomaly.reason ?? `score ${anomaly.score}`,
    });
    grouped[anomaly.entity_id] = list;
  }
  return grouped;
}

function EditDevice({
  device,
  onSaved,
  onCancel,
}: {
  device: Device;
  onSaved: (device: Device) => void;
  onCancel: () => void;
}) {
  const { api } = useApp();
  const [form, setForm] = useState({
    name: device.name,
    type: device.type,
    location: device.location ?? '',
  });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const field = (key: keyof typeof form) => ({
    value: form[key],
    onInput: (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value }),
  });
  const save = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const location = form.location.trim();
      onSaved(
        await api.updateDevice(device.id, {
          name: form.name.trim(),
          type: form.type.trim(),
          location: location || null,
        }),
      );
    } catch (failure) {
      setError(describeError(failure));
      setBusy(false);
    }
  };
  const remove = async () => {
    if (
      !window.confirm(
        `Remove ${device.name} (${device.device_id})? Its credential stops working at once and its entities are deleted.`,
      )
    )
      return;
    setBusy(true);
    try {
      await api.removeDevice(device.id);
      navigate({ name: 'devices' });
    } catch (failure) {
      setError(describeError(failure));
      setBusy(false);
    }
  };
  return (
    <form class="panel form-grid" onSubmit={save} aria-labelledby="edit-title">
      <h2 id="edit-title">Edit details</h2>
      {error && (
        <div class="span-all">
          <Notice tone="error">{error}</Notice>
        </div>
      )}
      <div class="field">
        <label for="edit-name">Name</label>
        <input id="edit-name" required maxLength={255} {...field('name')} />
      </div>
      <div class="field">
        <label for="edit-type">Type</label>
        <input id="edit-type" required maxLength={100} {...field('type')} />
      </div>
      <div class="field">
        <label for="edit-location">Location</label>
        <input id="edit-location" maxLength={255} {...field('location')} />
      </div>
      <div class="form-actions span-all">
        <button type="submit" class="button button-primary" disabled={busy}>
          Save
        </button>
        <button type="button" class="button button-ghost" onClick={onCancel}>
          Cancel
        </button>
        <button
          type="button"
          class="button button-danger push-right"
          onClick={remove}
          disabled={busy}
        >
          Remove device
        </button>
      </div>
    </form>
  );
}

/** The rollup an export of a range reads: raw readings up to a day, then the rollups. */
function exportSource(rangeMs: number): 'raw' | '5m' | '1h' {
  if (rangeMs <= 24 * 3_600_000) return 'raw';
  return rangeMs <= 7 * 24 * 3_600_000 ? '5m' : '1h';
}

/**
 * Exports the range the charts show, as CSV or JSON lines, and opens the file's expiring
 * link (the browser downloads it).
 */
function DownloadButtons({ id, history }: { id: number; history: History }) {
  const { api } = useApp();
  const [state, setState] = useState<{ busy: 'csv' | 'jsonl' | null; error: string | null }>({
    busy: null,
    error: null,
  });
  const source = exportSource(history.range.ms);
  const download = (format: 'csv' | 'jsonl') => {
    setState({ busy: format, error: null });
    // The range ends now, not when the charts loaded: the newest readings are included.
    const to = new Date();
    const from = new Date(to.getTime() - history.range.ms);
    api
      .call('get', '/api/devices/{id}/export', {
        params: { id: String(id) },
        query: { from: from.toISOString(), to: to.toISOString(), format, source },
      })
      .then(
        (answer) => {
          setState({ busy: null, error: null });
          window.location.assign(answer.export.url);
        },
        (failure: unknown) => setState({ busy: null, error: describeError(failure) }),
      );
  };
  const what = `last ${history.range.label}${source === 'raw' ? '' : `, ${source} means`}`;
  return (
    <span class="download-buttons">
      <button
        type="button"
        class="button button-ghost"
        disabled={state.busy !== null}
        onClick={() => download('csv')}
      >
        {state.busy === 'csv' ? 'Exporting…' : `Download CSV (${what})`}
      </button>
      <button
        type="button"
        class="button button-ghost"
        disabled={state.busy !== null}
        onClick={() => download('jsonl')}
      >
        {state.busy === 'jsonl' ? 'Exporting…' : 'JSON lines'}
      </button>
      {state.error && <span class="muted small"> {state.error}</span>}
    </span>
  );
}
