import { useCallback, useEffect, useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import { mayWrite, useApp } from '../context.ts';
import { absoluteTime } from '../format.ts';
import {
  activateModel,
  describeSettings,
  heldBackErrors,
  listModels,
  MODEL_STATUS_LABELS,
  type ModelSummary,
  trainModel,
  uploadModel,
} from '../models.ts';
import type { Device, Entity } from '../types.ts';
import { EmptyState, ErrorPanel, Loading, Notice } from './ui.tsx';

/**
 * The tenant's anomaly models: every version of every entity's model with its status and the
 * quality gate's figures. Owners and admins of a plan with custom models train one with a
 * chosen family and settings, upload their own TensorFlow.js model, or make an earlier
 * version active again.
 */
export function ModelsPage() {
  const { api, profile } = useApp();
  const canWrite = mayWrite(profile.user.role);
  const [models, setModels] = useState<ModelSummary[] | null>(null);
  const [devices, setDevices] = useState<Device[]>([]);
  const [allowed, setAllowed] = useState<boolean | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  const load = useCallback(() => {
    Promise.all([listModels(api), api.devices(), api.tenant()]).then(
      ([list, deviceList, overview]) => {
        setError(null);
        setModels(list);
        setDevices(deviceList);
        setAllowed(overview.plan.custom_models === true);
      },
      (failure: unknown) => setError(describeError(failure)),
    );
  }, [api]);
  useEffect(() => load(), [load]);

  const nameOf = (id: number) => devices.find((d) => d.id === id)?.name ?? `device ${id}`;
  const activate = async (model: ModelSummary) => {
    setActionError(null);
    try {
      await activateModel(api, model.id);
      load();
    } catch (failure) {
      setActionError(describeError(failure));
    }
  };

  return (
    <>
      <div class="page-head">
        <div>
          <h1>Models</h1>
          <p class="muted">
            Each sensor's anomaly model, every version. A model scores readings only after it
            forecast the readings held back from it better than repeating the last value.
          </p>
        </div>
      </div>
      {error && <ErrorPanel message={error} onRetry={load} />}
      {!models && !error && <Loading label="Loading models…" />}
      {allowed === false && (
        <Notice tone="info" title="Custom models are not in your plan">
          Choosing model families, uploading your own TensorFlow.js models and rolling back need the
          Industrial plan.
        </Notice>
      )}
      {actionError && (
        <Notice tone="error" title="Not activated">
          {actionError}
        </Notice>
      )}
      {models && models.length === 0 && (
        <EmptyState title="No models yet">
          <p>Models are trained from a sensor's history, or uploaded below.</p>
        </EmptyState>
      )}
      {models && models.length > 0 && (
        <table class="table models" aria-label="Models">
          <thead>
            <tr>
              <th>Device</th>
              <th>Entity</th>
              <th>Model</th>
              <th>Status</th>
              <th>Held-back error</th>
              <th>Trained</th>
              {canWrite && allowed && <th>Action</th>}
            </tr>
          </thead>
          <tbody>
            {models.map((model) => {
              const errors = heldBackErrors(model);
              return (
                <tr key={model.id} data-model-id={model.id} data-status={model.status}>
                  <td>{nameOf(model.device_id)}</td>
                  <td class="mono">{model.entity_id}</td>
                  <td>
                    {describeSettings(model)}
                    <div class="small muted mono">{model.version}</div>
                  </td>
                  <td>
                    <span class={`badge badge-model-${model.status}`}>
                      {MODEL_STATUS_LABELS[model.status]}
                    </span>
                    {model.status_reason && <div class="small muted">{model.status_reason}</div>}
                  </td>
                  <td class="small">
                    {errors
                      ? `${errors.model.toPrecision(3)} vs ${errors.naive.toPrecision(3)} repeating the last value`
                      : '—'}
                  </td>
                  <td class="mono small">{absoluteTime(model.trained_at)}</td>
                  {canWrite && allowed && (
                    <td>
                      {model.status === 'superseded' && (
                        <button type="button" class="button" onClick={() => activate(model)}>
                          Make active
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {canWrite && allowed && devices.length > 0 && (
        <div class="model-forms">
          <TrainForm devices={devices} onDone={load} />
          <UploadForm devices={devices} onDone={load} />
        </div>
      )}
    </>
  );
}

/** The chosen device's numeric entities (what a model can forecast). */
function useNumericEntities(deviceId: number | null): Entity[] {
  const { api } = useApp();
  const [entities, setEntities] = useState<Entity[]>([]);
  useEffect(() => {
    if (deviceId === null) return;
    // A slower answer for the device chosen before must not replace this one's entities.
    let current = true;
    api.device(deviceId).then(
      (detail) =>
        current &&
        setEntities(
          detail.entities.filter((e) => e.entity_type === 'sensor' || e.entity_type === 'number'),
        ),
      () => current && setEntities([]),
    );
    return () => {
      current = false;
    };
  }, [api, deviceId]);
  return entities;
}

function TargetFields({
  prefix,
  devices,
  target,
}: {
  prefix: string;
  devices: Device[];
  target: ReturnType<typeof useTarget>;
}) {
  const { deviceId, entityId, entities } = target;
  return (
    <>
      <div class="field">
        <label for={`${prefix}-device`}>Device</label>
        <select
          id={`${prefix}-device`}
          value={deviceId === null ? '' : String(deviceId)}
          onChange={(e) => target.setDeviceId(Number((e.target as HTMLSelectElement).value))}
        >
          {devices.map((d) => (
            <option key={d.id} value={String(d.id)}>
              {d.name} ({d.device_id})
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for={`${prefix}-entity`}>Sensor</label>
        <select
          id={`${prefix}-entity`}
          required
          value={entityId}
          onChange={(e) => target.setEntityId((e.target as HTMLSelectElement).value)}
        >
          {entities.map((e) => (
            <option key={e.entity_id} value={e.entity_id}>
              {e.name ?? e.entity_id}
            </option>
          ))}
        </select>
      </div>
    </>
  );
}

/** How many past readings a model takes, for training (4-128) or an upload (2-128). */
function WindowField(props: {
  prefix: string;
  min: number;
  value: number;
  onChange: (value: number) => void;
}) {
  return (
    <div class="field">
      <label for={`${props.prefix}-window`}>Window (readings)</label>
      <input
        id={`${props.prefix}-window`}
        type="number"
        min={props.min}
        max={128}
        required
        value={props.value}
        onInput={(e) => props.onChange(Number((e.target as HTMLInputElement).value))}
      />
    </div>
  );
}

function useTarget(devices: Device[]) {
  const [deviceId, setDeviceId] = useState<number | null>(devices[0]?.id ?? null);
  const entities = useNumericEntities(deviceId);
  const [chosen, setChosen] = useState('');
  const entityId = entities.some((e) => e.entity_id === chosen)
    ? chosen
    : (entities[0]?.entity_id ?? '');
  return { deviceId, setDeviceId, entities, entityId, setEntityId: setChosen };
}

/** A request that makes a model, and what became of it: active, rejected, or refused. */
function useModelRequest(verb: string, onDone: () => void) {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ tone: 'error' | 'info'; text: string } | null>(null);
  const run = async (request: () => Promise<ModelSummary>) => {
    setBusy(true);
    setMessage(null);
    try {
      const model = await request();
      setMessage({
        tone: 'info',
        text:
          model.status === 'active'
            ? `${verb} and active: ${model.version}`
            : `${verb} but rejected: ${model.status_reason ?? ''}`,
      });
      onDone();
    } catch (failure) {
      setMessage({ tone: 'error', text: describeError(failure) });
    } finally {
      setBusy(false);
    }
  };
  return { busy, message, run };
}

/** A model form's submit button and what came of the last submission. */
function FormOutcome(props: {
  label: string;
  busyLabel: string;
  busy: boolean;
  disabled: boolean;
  message: { tone: 'error' | 'info'; text: string } | null;
}) {
  return (
    <>
      <div class="form-actions span-all">
        <button type="submit" class="button button-primary" disabled={props.busy || props.disabled}>
          {props.busy ? props.busyLabel : props.label}
        </button>
      </div>
      {props.message && (
        <div class="span-all">
          <Notice tone={props.message.tone}>{props.message.text}</Notice>
        </div>
      )}
    </>
  );
}

function TrainForm({ devices, onDone }: { devices: Device[]; onDone: () => void }) {
  const { api } = useApp();
  const target = useTarget(devices);
  const [family, setFamily] = useState<'dense' | 'linear'>('dense');
  const [size, setSize] = useState<'small' | 'medium' | 'large'>('medium');
  const [windowSize, setWindowSize] = useState(24);
  const [chosenOthers, setChosenOthers] = useState<string[]>([]);
  const [coWindow, setCoWindow] = useState(4);
  const { busy, message, run } = useModelRequest('Trained', onDone);
  // The device's other numeric entities; a choice left from another device or entity is dropped.
  const others = target.entities.filter((e) => e.entity_id !== target.entityId);
  const coEntities = chosenOthers.filter((id) => others.some((e) => e.entity_id === id));
  const toggleOther = (id: string, on: boolean) =>
    setChosenOthers((chosen) => (on ? [...chosen, id] : chosen.filter((x) => x !== id)));
  const submit = (event: Event) => {
    event.preventDefault();
    if (target.deviceId === null || !target.entityId) return;
    const deviceId = target.deviceId;
    run(() =>
      trainModel(api, {
        device_id: deviceId,
        entity_id: target.entityId,
        family,
        size,
        window_size: windowSize,
        co_entities: coEntities,
        co_window: coWindow,
      }),
    );
  };
  return (
    <form class="panel form-grid train-model" onSubmit={submit} aria-labelledby="train-title">
      <h2 id="train-title" class="span-all">
        Train a model
      </h2>
      <TargetFields prefix="train" devices={devices} target={target} />
      <div class="field">
        <label for="train-family">Family</label>
        <select
          id="train-family"
          value={family}
          onChange={(e) => setFamily((e.target as HTMLSelectElement).value as 'dense' | 'linear')}
        >
          <option value="dense">Dense network</option>
          <option value="linear">Linear (autoregressive)</option>
        </select>
      </div>
      {family === 'dense' && (
        <div class="field">
          <label for="train-size">Size</label>
          <select
            id="train-size"
            value={size}
            onChange={(e) =>
              setSize((e.target as HTMLSelectElement).value as 'small' | 'medium' | 'large')
            }
          >
            <option value="small">Small (8)</option>
            <option value="medium">Medium (16, 8)</option>
            <option value="large">Large (32, 16)</option>
          </select>
        </div>
      )}
      <WindowField prefix="train" min={4} value={windowSize} onChange={setWindowSize} />
      {others.length > 0 && (
        <fieldset class="span-all co-entities">
          <legend>Also read other sensors of the device</legend>
          {others.map((e) => (
            <label key={e.entity_id} class="checkbox">
              <input
                type="checkbox"
                name="co-entity"
                value={e.entity_id}
                checked={coEntities.includes(e.entity_id)}
                disabled={!coEntities.includes(e.entity_id) && coEntities.length >= 4}
                onChange={(ev) => toggleOther(e.entity_id, (ev.target as HTMLInputElement).checked)}
              />{' '}
              {e.name ?? e.entity_id}
            </label>
          ))}
          {coEntities.length > 0 && (
            <div class="field">
              <label for="train-co-window">Readings of each (as of the sensor's last ones)</label>
              <input
                id="train-co-window"
                type="number"
                min={1}
                max={32}
                required
                value={coWindow}
                onInput={(ev) => setCoWindow(Number((ev.target as HTMLInputElement).value))}
              />
            </div>
          )}
        </fieldset>
      )}
      <FormOutcome
        label="Train"
        busyLabel="Training…"
        busy={busy}
        disabled={!target.entityId}
        message={message}
      />
    </form>
  );
}

function UploadForm({ devices, onDone }: { devices: Device[]; onDone: () => void }) {
  const { api } = useApp();
  const target = useTarget(devices);
  const [modelFile, setModelFile] = useState<File | null>(null);
  const [weightFiles, setWeightFiles] = useState<File[]>([]);
  const [windowSize, setWindowSize] = useState(24);
  const [encoding, setEncoding] = useState<'relative' | 'standardised'>('relative');
  const [timeOfDay, setTimeOfDay] = useState(true);
  const [mean, setMean] = useState('0');
  const [std, setStd] = useState('1');
  const { busy, message, run } = useModelRequest('Uploaded', onDone);
  const submit = (event: Event) => {
    event.preventDefault();
    if (target.deviceId === null || !target.entityId || !modelFile) return;
    const choice = {
      device_id: target.deviceId,
      entity_id: target.entityId,
      window_size: windowSize,
      encoding,
      time_of_day: timeOfDay,
      mean: Number(mean),
      std: Number(std),
    };
    run(() => uploadModel(api, choice, modelFile, weightFiles));
  };
  const files = (e: Event) => Array.from((e.target as HTMLInputElement).files ?? []);
  return (
    <form class="panel form-grid upload-model" onSubmit={submit} aria-labelledby="upload-title">
      <h2 id="upload-title" class="span-all">
        Upload a TensorFlow.js model
      </h2>
      <p class="muted span-all small">
        A Sequential Layers model (model.json and its weight files, at most 512 KiB of float32
        weights) of Dense, Dropout and Activation layers with one output: the next reading. It runs
        as data; no code of it is executed.
      </p>
      <TargetFields prefix="upload" devices={devices} target={target} />
      <div class="field">
        <label for="upload-model-json">model.json</label>
        <input
          id="upload-model-json"
          type="file"
          accept=".json,application/json"
          required
          onChange={(e) => setModelFile(files(e)[0] ?? null)}
        />
      </div>
      <div class="field">
        <label for="upload-weights">Weight files</label>
        <input
          id="upload-weights"
          type="file"
          accept=".bin"
          multiple
          required
          onChange={(e) => setWeightFiles(files(e))}
        />
      </div>
      <WindowField prefix="upload" min={2} value={windowSize} onChange={setWindowSize} />
      <div class="field">
        <label for="upload-encoding">Input</label>
        <select
          id="upload-encoding"
          value={encoding}
          onChange={(e) =>
            setEncoding((e.target as HTMLSelectElement).value as 'relative' | 'standardised')
          }
        >
          <option value="relative">Relative to the latest reading</option>
          <option value="standardised">Standardised (minus mean, over std)</option>
        </select>
      </div>
      <div class="field">
        <label for="upload-mean">Mean</label>
        <input
          id="upload-mean"
          type="number"
          step="any"
          required
          value={mean}
          onInput={(e) => setMean((e.target as HTMLInputElement).value)}
        />
      </div>
      <div class="field">
        <label for="upload-std">Standard deviation</label>
        <input
          id="upload-std"
          type="number"
          step="any"
          min={0}
          required
          value={std}
          onInput={(e) => setStd((e.target as HTMLInputElement).value)}
        />
      </div>
      <div class="field">
        <label class="checkbox">
          <input
            type="checkbox"
            checked={timeOfDay}
            onChange={(e) => setTimeOfDay((e.target as HTMLInputElement).checked)}
          />{' '}
          Time of day follows the window
        </label>
      </div>
      <FormOutcome
        label="Upload"
        busyLabel="Uploading…"
        busy={busy}
        disabled={!target.entityId}
        message={message}
      />
    </form>
  );
}
