import { useEffect, useRef, useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import { useApp } from '../context.ts';
import { formatValue, relativeTime } from '../format.ts';
import type { CommandStatus, Entity, Value } from '../types.ts';

type Phase = 'idle' | 'sending' | CommandStatus | 'error';

interface CommandState {
  phase: Phase;
  value?: Value;
  message?: string;
}

const POLL_MS = 1_000;
// The API times a command out itself; this only stops polling if the API stops answering.
const GIVE_UP_MS = 120_000;

function useCommand(deviceId: number, entityId: string, onSettled: () => void) {
  const { api } = useApp();
  const [state, setState] = useState<CommandState>({ phase: 'idle' });
  const generation = useRef(0);
  // Unmounting bumps the generation so a poll in flight stops touching state.
  useEffect(
    () => () => {
      generation.current += 1;
    },
    [],
  );

  const send = async (value: Value) => {
    const mine = ++generation.current;
    const current = () => generation.current === mine;
    setState({ phase: 'sending', value });
    let commandId: string;
    try {
      const accepted = await api.sendCommand(deviceId, entityId, value);
      commandId = accepted.command_id;
      if (!current()) return;
      setState({ phase: accepted.status, value });
      if (accepted.status !== 'sent') {
        onSettled();
        return;
      }
    } catch (failure) {
      if (current()) setState({ phase: 'error', value, message: describeError(failure) });
      return;
    }
    const started = Date.now();
    while (current() && Date.now() - started < GIVE_UP_MS) {
      await new Promise((resolve) => window.setTimeout(resolve, POLL_MS));
      if (!current()) return;
      try {
        const command = await api.command(deviceId, commandId);
        if (!current()) return;
        if (command.status !== 'sent') {
          setState({ phase: command.status, value });
          onSettled();
          return;
        }
      } catch (failure) {
        if (current()) setState({ phase: 'error', value, message: describeError(failure) });
        return;
      }
    }
    if (current()) setState({ phase: 'timed_out', value });
  };
  return { state, send };
}

function CommandStatusText({ state }: { state: CommandState }) {
  const text: Record<Phase, string> = {
    idle: '',
    sending: 'Sending…',
    sent: 'Sent, waiting for the device to confirm…',
    confirmed: 'Confirmed by the device',
    timed_out: 'Timed out: the device did not confirm. Check that it is online, then try again.',
    failed: 'Failed: the broker did not accept the command. Try again in a moment.',
    error: state.message ?? 'The command was not sent.',
  };
  return (
    <p
      class={`cmd-status cmd-${state.phase}`}
      role="status"
      aria-live="polite"
      data-command-status={state.phase}
    >
      {state.phase !== 'idle' && <span class="cmd-chip">{state.phase.replace('_', ' ')}</span>}
      <span>{text[state.phase]}</span>
    </p>
  );
}

interface ControlProps {
  deviceId: number;
  entity: Entity;
  canWrite: boolean;
  now: number;
  onSettled: () => void;
}

function Updated({ entity, now }: { entity: Entity; now: number }) {
  return (
    <p class="small muted">
      {entity.latest
        ? `Reported ${relativeTime(entity.latest.time, now)}`
        : 'No state reported yet'}
    </p>
  );
}

export function SwitchControl({ deviceId, entity, canWrite, now, onSettled }: ControlProps) {
  const { state, send } = useCommand(deviceId, entity.entity_id, onSettled);
  const reported = entity.latest?.value === true;
  const pending = state.phase === 'sending' || state.phase === 'sent';
  const shown = pending && typeof state.value === 'boolean' ? state.value : reported;
  const labelId = `switch-${entity.entity_id}-label`;
  return (
    <div class="control" data-entity-id={entity.entity_id}>
      <div class="control-row">
        <span id={labelId} class="control-name">
          {entity.name}
        </span>
        <button
          type="button"
          role="switch"
          class={`switch${pending ? ' switch-pending' : ''}`}
          aria-checked={shown}
          aria-labelledby={labelId}
          disabled={!canWrite || state.phase === 'sending'}
          onClick={() => void send(!shown)}
        >
          <span class="switch-track" aria-hidden="true">
            <span class="switch-thumb" />
          </span>
          <span class="switch-text">{shown ? 'On' : 'Off'}</span>
        </button>
      </div>
      <Updated entity={entity} now={now} />
      <CommandStatusText state={state} />
    </div>
  );
}

export function NumberControl({ deviceId, entity, canWrite, now, onSettled }: ControlProps) {
  const { state, send } = useCommand(deviceId, entity.entity_id, onSettled);
  const config = entity.config ?? {};
  const min = typeof config.min === 'number' ? config.min : undefined;
  const max = typeof config.max === 'number' ? config.max : undefined;
  const step = typeof config.step === 'number' ? config.step : 'any';
  const reported = typeof entity.latest?.value === 'number' ? entity.latest.value : undefined;
  const [draft, setDraft] = useState(reported === undefined ? '' : String(reported));
  const [touched, setTouched] = useState(false);
  useEffect(() => {
    if (!touched && reported !== undefined) setDraft(String(reported));
  }, [reported, touched]);
  const inputId = `number-${entity.entity_id}`;
  const submit = (event: Event) => {
    event.preventDefault();
    const value = Number(draft);
    if (draft.trim() === '' || !Number.isFinite(value)) return;
    setTouched(false);
    void send(value);
  };
  return (
    <form class="control" onSubmit={submit} data-entity-id={entity.entity_id}>
      <label class="control-name" for={inputId}>
        {entity.name}
        <span class="control-current mono">{formatValue(reported, entity.unit)}</span>
      </label>
      <div class="control-row">
        <input
          id={inputId}
          type="number"
          inputMode="decimal"
          min={min}
          max={max}
          step={step}
          required
          disabled={!canWrite}
          value={draft}
          aria-describedby={`${inputId}-range`}
          onInput={(e) => {
            setTouched(true);
            setDraft(e.currentTarget.value);
          }}
        />
        {entity.unit && <span class="unit">{entity.unit}</span>}
        <button type="submit" class="button" disabled={!canWrite || state.phase === 'sending'}>
          Set
        </button>
      </div>
      <p id={`${inputId}-range`} class="small muted">
        {min !== undefined || max !== undefined
          ? `From ${min ?? '−∞'} to ${max ?? '∞'}${typeof step === 'number' ? `, step ${step}` : ''}. `
          : ''}
        {entity.latest
          ? `Reported ${relativeTime(entity.latest.time, now)}`
          : 'No value reported yet'}
      </p>
      <CommandStatusText state={state} />
    </form>
  );
}

export function TextControl({ deviceId, entity, canWrite, now, onSettled }: ControlProps) {
  const { state, send } = useCommand(deviceId, entity.entity_id, onSettled);
  const config = entity.config ?? {};
  const maxLength = typeof config.max_length === 'number' ? config.max_length : 255;
  const reported = typeof entity.latest?.value === 'string' ? entity.latest.value : undefined;
  const [draft, setDraft] = useState(reported ?? '');
  const [touched, setTouched] = useState(false);
  useEffect(() => {
    if (!touched && reported !== undefined) setDraft(reported);
  }, [reported, touched]);
  const inputId = `text-${entity.entity_id}`;
  const submit = (event: Event) => {
    event.preventDefault();
    setTouched(false);
    void send(draft);
  };
  return (
    <form class="control" onSubmit={submit} data-entity-id={entity.entity_id}>
      <label class="control-name" for={inputId}>
        {entity.name}
        <span class="control-current mono">{formatValue(reported, null)}</span>
      </label>
      <div class="control-row">
        <input
          id={inputId}
          maxLength={maxLength}
          disabled={!canWrite}
          value={draft}
          onInput={(e) => {
            setTouched(true);
            setDraft(e.currentTarget.value);
          }}
        />
        <button type="submit" class="button" disabled={!canWrite || state.phase === 'sending'}>
          Send
        </button>
      </div>
      <Updated entity={entity} now={now} />
      <CommandStatusText state={state} />
    </form>
  );
}
