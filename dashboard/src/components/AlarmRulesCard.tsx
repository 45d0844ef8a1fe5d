import { useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import type { paths } from '../api-types.ts';
import { useApp } from '../context.ts';
import type { AlarmRule, Device, Entity } from '../types.ts';
import { Notice } from './ui.tsx';

type Condition = AlarmRule['condition'];
type ConditionType = Condition['type'];
type Severity = AlarmRule['severity'];
/** What POST /api/alarm-rules takes; PATCH takes the same fields. */
type RuleBody = paths['/api/alarm-rules']['post']['requestBody']['content']['application/json'];

const CONDITION_LABELS: Record<ConditionType, string> = {
  threshold: 'Value beyond a limit',
  no_data: 'No data for a while',
  offline: 'Device offline',
  anomaly: 'Anomaly score (anomaly detection plans)',
  rul_below: 'Remaining useful life below (predictive maintenance plans)',
  relay_uncommanded: 'Relay changed without a command',
};
const SEVERITIES: Severity[] = ['critical', 'major', 'minor', 'warning'];

/** One line saying what a rule watches, as the rule list and the alarm bands name it. */
export function describeCondition(rule: Pick<AlarmRule, 'condition' | 'entity_id'>): string {
  const c = rule.condition;
  const on = rule.entity_id ? `${rule.entity_id} ` : '';
  switch (c.type) {
    case 'threshold': {
      const limit =
        c.op === '>' || c.op === '<' ? `${c.op} ${c.value}` : `${c.op} ${c.low} – ${c.high}`;
      const held = c.for_seconds ? ` for ${c.for_seconds} s` : '';
      const band = c.hysteresis ? `, clears ${c.hysteresis} inside` : '';
      return `${on}${limit}${held}${band}`;
    }
    case 'no_data':
      return `no data for ${c.minutes} min`;
    case 'offline':
      return `offline for ${c.minutes} min`;
    case 'anomaly':
      return `${on}anomaly score ≥ ${c.min_score}`;
    case 'rul_below':
      return `remaining useful life < ${c.value}${c.hysteresis ? `, clears at ${c.value + c.hysteresis}` : ''}`;
    case 'relay_uncommanded':
      return `${on}relay changed without a command`;
  }
}

/** The editor's fields, as text while typed; numbers are read when the form is sent. */
interface Draft {
  name: string;
  scope: 'device' | 'type';
  entityId: string;
  severity: Severity;
  type: ConditionType;
  op: '>' | '<' | 'outside' | 'inside';
  value: string;
  low: string;
  high: string;
  forSeconds: string;
  hysteresis: string;
  minutes: string;
  minScore: string;
  clearAfter: string;
  emails: string;
  webhooks: Array<{ url: string; secret: string }>;
  notifyTouched: boolean;
  quietMinutes: string;
  enabled: boolean;
}

const text = (value: number | undefined | null) =>
  value === undefined || value === null ? '' : String(value);

function draftOf(rule: AlarmRule | null, entities: Entity[]): Draft {
  const c = rule?.condition;
  return {
    name: rule?.name ?? '',
    scope: rule && rule.device_id === null ? 'type' : 'device',
    entityId: rule?.entity_id ?? entities[0]?.entity_id ?? '',
    severity: rule?.severity ?? 'major',
    type: c?.type ?? 'threshold',
    op: c?.type === 'threshold' ? c.op : '>',
    value: c?.type === 'threshold' || c?.type === 'rul_below' ? text(c.value) : '',
    low: c?.type === 'threshold' ? text(c.low) : '',
    high: c?.type === 'threshold' ? text(c.high) : '',
    forSeconds: c?.type === 'threshold' ? text(c.for_seconds) : '0',
    hysteresis: c?.type === 'threshold' || c?.type === 'rul_below' ? text(c.hysteresis) : '0',
    minutes: c?.type === 'no_data' || c?.type === 'offline' ? text(c.minutes) : '5',
    minScore: c?.type === 'anomaly' ? text(c.min_score) : '3',
    clearAfter:
      c?.type === 'anomaly' || c?.type === 'relay_uncommanded' ? text(c.clear_after_minutes) : '15',
    emails: rule?.notify.emails.join(', ') ?? '',
    // Secrets are write-only: an edited rule's webhooks need theirs again to be changed.
    webhooks: rule?.notify.webhooks.map((hook) => ({ url: hook.url, secret: '' })) ?? [],
    notifyTouched: rule === null,
    quietMinutes: text(rule?.quiet_minutes ?? 10),
    enabled: rule?.enabled ?? true,
  };
}

class DraftError extends Error {}

function number(label: string, raw: string): number {
  const value = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(value)) throw new DraftError(`${label}: a number`);
  return value;
}

/** The rule body the API takes (POST, or PATCH with every field the editor shows). */
function bodyOf(draft: Draft, device: Device) {
  const entity = draft.entityId || undefined;
  let condition: Record<string, unknown>;
  let entityId: string | undefined;
  switch (draft.type) {
    case 'threshold':
      entityId = entity;
      if (!entityId) throw new DraftError('Choose the entity the limit applies to');
      condition = {
        type: 'threshold',
        op: draft.op,
        ...(draft.op === '>' || draft.op === '<'
          ? { value: number('Limit', draft.value) }
          : { low: number('Low', draft.low), high: number('High', draft.high) }),
        for_seconds: number('Held for (s)', draft.forSeconds),
        hysteresis: number('Hysteresis', draft.hysteresis),
      };
      break;
    case 'no_data':
    case 'offline':
      condition = { type: draft.type, minutes: number('Minutes', draft.minutes) };
      break;
    case 'anomaly':
      entityId = entity;
      condition = {
        type: 'anomaly',
        min_score: number('Score', draft.minScore),
        clear_after_minutes: number('Clears after (min)', draft.clearAfter),
      };
      break;
    case 'rul_below':
      condition = {
        type: 'rul_below',
        value: number('Remaining life', draft.value),
        hysteresis: number('Hysteresis', draft.hysteresis),
      };
      break;
    case 'relay_uncommanded':
      entityId = entity;
      condition = {
        type: 'relay_uncommanded',
        clear_after_minutes: number('Clears after (min)', draft.clearAfter),
      };
      break;
  }
  const emails = draft.emails
    .split(/[,\s]+/)
    .map((address) => address.trim())
    .filter(Boolean);
  const webhooks = draft.webhooks.filter((hook) => hook.url.trim() || hook.secret);
  if (draft.notifyTouched && webhooks.some((hook) => hook.secret === '')) {
    throw new DraftError(
      'Enter the secret of every webhook (secrets are never shown again once saved)',
    );
  }
  return {
    name: draft.name.trim(),
    ...(draft.scope === 'device' ? { device_id: device.id } : { device_type: device.type }),
    ...(entityId ? { entity_id: entityId } : {}),
    severity: draft.severity,
    condition,
    ...(draft.notifyTouched
      ? {
          notify: {
            emails,
            webhooks: webhooks.map((h) => ({ url: h.url.trim(), secret: h.secret })),
          },
        }
      : {}),
    quiet_minutes: number('Quiet period (min)', draft.quietMinutes),
    enabled: draft.enabled,
  };
}

/**
 * The alarm rules that watch this device (its own, and those of every device of its type):
 * owners and admins create, change and delete them here; viewers see them.
 */
export function AlarmRulesCard({
  device,
  entities,
  rules,
  canWrite,
  onChanged,
}: {
  device: Device;
  entities: Entity[];
  rules: AlarmRule[] | null;
  canWrite: boolean;
  onChanged: () => void;
}) {
  const { api } = useApp();
  const [editing, setEditing] = useState<AlarmRule | 'new' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const mine = (rules ?? []).filter(
    (rule) =>
      rule.device_id === device.id || (rule.device_id === null && rule.device_type === device.type),
  );
  const remove = async (rule: AlarmRule) => {
    if (!window.confirm(`Delete the rule "${rule.name}"? Its open alarms are cleared.`)) return;
    try {
      await api.call('delete', '/api/alarm-rules/{id}', { params: { id: String(rule.id) } });
      setError(null);
      onChanged();
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  return (
    <section aria-labelledby="rules-title" class="section alarm-rules">
      <div class="section-head">
        <h2 id="rules-title">Alarm rules</h2>
        {canWrite && editing === null && (
          <button type="button" class="button" onClick={() => setEditing('new')}>
            New rule
          </button>
        )}
      </div>
      {error && <Notice tone="error">{error}</Notice>}
      {editing !== null && (
        <RuleEditor
          key={editing === 'new' ? 'new' : editing.id}
          device={device}
          entities={entities}
          rule={editing === 'new' ? null : editing}
          onDone={(saved) => {
            setEditing(null);
            if (saved) onChanged();
          }}
        />
      )}
      {rules === null ? null : mine.length === 0 ? (
        <p class="muted small">
          No rule watches this device.
          {canWrite ? '' : ' Owners and admins can add one.'}
        </p>
      ) : (
        <div class="table-scroll">
          <table class="table" aria-label="Alarm rules of this device">
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">Condition</th>
                <th scope="col">Severity</th>
                <th scope="col">Applies to</th>
                {canWrite && <th scope="col" />}
              </tr>
            </thead>
            <tbody>
              {mine.map((rule) => (
                <tr key={rule.id} data-rule-id={rule.id}>
                  <td>
                    {rule.name}
                    {!rule.enabled && <span class="muted small"> (off)</span>}
                  </td>
                  <td class="small">{describeCondition(rule)}</td>
                  <td>
                    <span class={`severity severity-${rule.severity}`}>{rule.severity}</span>
                  </td>
                  <td class="small">
                    {rule.device_id === null ? `every ${rule.device_type}` : 'this device'}
                  </td>
                  {canWrite && (
                    <td class="actions">
                      <button
                        type="button"
                        class="button button-ghost"
                        aria-label={`Edit ${rule.name}`}
                        onClick={() => setEditing(rule)}
                      >
                        Edit
                      </button>
                      <button
                        type="button"
                        class="button button-ghost"
                        aria-label={`Delete ${rule.name}`}
                        onClick={() => void remove(rule)}
                      >
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function RuleEditor({
  device,
  entities,
  rule,
  onDone,
}: {
  device: Device;
  entities: Entity[];
  rule: AlarmRule | null;
  onDone: (saved: boolean) => void;
}) {
  const { api } = useApp();
  const numeric = entities.filter((e) => e.entity_type === 'sensor' || e.entity_type === 'number');
  const [draft, setDraft] = useState(() => draftOf(rule, numeric));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<Draft>) => setDraft((d) => ({ ...d, ...patch }));
  const field = (key: keyof Draft) => ({
    value: draft[key] as string,
    onInput: (e: Event) => set({ [key]: (e.currentTarget as HTMLInputElement).value }),
  });
  const choices =
    draft.type === 'threshold'
      ? numeric
      : draft.type === 'relay_uncommanded'
        ? entities.filter((e) => e.entity_type === 'switch')
        : numeric;
  const needsEntity = draft.type === 'threshold';
  const mayNameEntity =
    needsEntity || draft.type === 'anomaly' || draft.type === 'relay_uncommanded';
  const idPrefix = `rule-${rule?.id ?? 'new'}`;

  const save = async (event: Event) => {
    event.preventDefault();
    setError(null);
    let body: ReturnType<typeof bodyOf>;
    try {
      // A threshold needs an entity: the first numeric one unless another was picked.
      const chosen =
        needsEntity && !choices.some((e) => e.entity_id === draft.entityId)
          ? { ...draft, entityId: choices[0]?.entity_id ?? '' }
          : draft;
      body = bodyOf(chosen, device);
    } catch (failure) {
      if (failure instanceof DraftError) {
        setError(failure.message);
        return;
      }
      throw failure;
    }
    setBusy(true);
    try {
      if (rule === null) {
        // The condition is built from the form's strings; the server checks it whole.
        await api.call('post', '/api/alarm-rules', { body: body as RuleBody });
      } else {
        await api.call('patch', '/api/alarm-rules/{id}', {
          params: { id: String(rule.id) },
          body: body as RuleBody,
        });
      }
      onDone(true);
    } catch (failure) {
      setError(describeError(failure));
      setBusy(false);
    }
  };

  return (
    <form class="panel form-grid rule-editor" onSubmit={save} aria-labelledby={`${idPrefix}-title`}>
      <h3 id={`${idPrefix}-title`}>{rule ? `Edit ${rule.name}` : 'New alarm rule'}</h3>
      {error && (
        <div class="span-all">
          <Notice tone="error">{error}</Notice>
        </div>
      )}
      <div class="field">
        <label for={`${idPrefix}-name`}>Rule name</label>
        <input id={`${idPrefix}-name`} required maxLength={200} {...field('name')} />
      </div>
      <div class="field">
        <label for={`${idPrefix}-scope`}>Applies to</label>
        <select
          id={`${idPrefix}-scope`}
          value={draft.scope}
          onChange={(e) => set({ scope: (e.currentTarget as HTMLSelectElement).value as never })}
        >
          <option value="device">This device</option>
          <option value="type">Every device of type {device.type}</option>
        </select>
      </div>
      <div class="field">
        <label for={`${idPrefix}-severity`}>Severity</label>
        <select
          id={`${idPrefix}-severity`}
          value={draft.severity}
          onChange={(e) =>
            set({ severity: (e.currentTarget as HTMLSelectElement).value as Severity })
          }
        >
          {SEVERITIES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for={`${idPrefix}-type`}>Condition</label>
        <select
          id={`${idPrefix}-type`}
          value={draft.type}
          onChange={(e) =>
            set({ type: (e.currentTarget as HTMLSelectElement).value as ConditionType })
          }
        >
          {(Object.keys(CONDITION_LABELS) as ConditionType[]).map((type) => (
            <option key={type} value={type}>
              {CONDITION_LABELS[type]}
            </option>
          ))}
        </select>
      </div>
      {mayNameEntity && (
        <div class="field">
          <label for={`${idPrefix}-entity`}>Entity</label>
          <select
            id={`${idPrefix}-entity`}
            value={draft.entityId}
            onChange={(e) => set({ entityId: (e.currentTarget as HTMLSelectElement).value })}
          >
            {!needsEntity && <option value="">any</option>}
            {choices.map((entity) => (
              <option key={entity.entity_id} value={entity.entity_id}>
                {entity.name} ({entity.entity_id})
              </option>
            ))}
          </select>
        </div>
      )}
      {draft.type === 'threshold' && (
        <>
          <div class="field">
            <label for={`${idPrefix}-op`}>Alarm when the value is</label>
            <select
              id={`${idPrefix}-op`}
              value={draft.op}
              onChange={(e) =>
                set({ op: (e.currentTarget as HTMLSelectElement).value as Draft['op'] })
              }
            >
              <option value=">">above</option>
              <option value="<">below</option>
              <option value="outside">outside a range</option>
              <option value="inside">inside a range</option>
            </select>
          </div>
          {draft.op === '>' || draft.op === '<' ? (
            <div class="field">
              <label for={`${idPrefix}-value`}>Limit</label>
              <input id={`${idPrefix}-value`} inputMode="decimal" required {...field('value')} />
            </div>
          ) : (
            <>
              <div class="field">
                <label for={`${idPrefix}-low`}>Low</label>
                <input id={`${idPrefix}-low`} inputMode="decimal" required {...field('low')} />
              </div>
              <div class="field">
                <label for={`${idPrefix}-high`}>High</label>
                <input id={`${idPrefix}-high`} inputMode="decimal" required {...field('high')} />
              </div>
            </>
          )}
          <div class="field">
            <label for={`${idPrefix}-for`}>Held for (s)</label>
            <input id={`${idPrefix}-for`} inputMode="numeric" {...field('forSeconds')} />
          </div>
          <div class="field">
            <label for={`${idPrefix}-hysteresis`}>Hysteresis</label>
            <input id={`${idPrefix}-hysteresis`} inputMode="decimal" {...field('hysteresis')} />
          </div>
        </>
      )}
      {(draft.type === 'no_data' || draft.type === 'offline') && (
        <div class="field">
          <label for={`${idPrefix}-minutes`}>Minutes</label>
          <input id={`${idPrefix}-minutes`} inputMode="numeric" required {...field('minutes')} />
        </div>
      )}
      {draft.type === 'anomaly' && (
        <div class="field">
          <label for={`${idPrefix}-score`}>Score at least</label>
          <input id={`${idPrefix}-score`} inputMode="decimal" required {...field('minScore')} />
        </div>
      )}
      {draft.type === 'rul_below' && (
        <>
          <div class="field">
            <label for={`${idPrefix}-rul`}>Remaining life below (cycles or hours)</label>
            <input id={`${idPrefix}-rul`} inputMode="decimal" required {...field('value')} />
          </div>
          <div class="field">
            <label for={`${idPrefix}-rul-hysteresis`}>Hysteresis</label>
            <input id={`${idPrefix}-rul-hysteresis`} inputMode="decimal" {...field('hysteresis')} />
          </div>
        </>
      )}
      {(draft.type === 'anomaly' || draft.type === 'relay_uncommanded') && (
        <div class="field">
          <label for={`${idPrefix}-clear`}>Clears after (min) without a new event</label>
          <input id={`${idPrefix}-clear`} inputMode="numeric" {...field('clearAfter')} />
        </div>
      )}
      <div class="field">
        <label for={`${idPrefix}-emails`}>E-mail recipients</label>
        <input
          id={`${idPrefix}-emails`}
          placeholder="shift@plant.example, …"
          value={draft.emails}
          onInput={(e) =>
            set({ emails: (e.currentTarget as HTMLInputElement).value, notifyTouched: true })
          }
        />
      </div>
      <div class="field">
        <label for={`${idPrefix}-quiet`}>Quiet period (min)</label>
        <input id={`${idPrefix}-quiet`} inputMode="numeric" {...field('quietMinutes')} />
      </div>
      <div class="span-all">
        {draft.webhooks.map((hook, index) => (
          <div class="form-grid" key={index}>
            <div class="field">
              <label for={`${idPrefix}-hook-${index}`}>Webhook URL</label>
              <input
                id={`${idPrefix}-hook-${index}`}
                type="url"
                value={hook.url}
                onInput={(e) =>
                  set({
                    notifyTouched: true,
                    webhooks: draft.webhooks.map((h, i) =>
                      i === index ? { ...h, url: (e.currentTarget as HTMLInputElement).value } : h,
                    ),
                  })
                }
              />
            </div>
            <div class="field">
              <label for={`${idPrefix}-secret-${index}`}>Signing secret (16+ characters)</label>
              <input
                id={`${idPrefix}-secret-${index}`}
                type="password"
                autoComplete="off"
                placeholder={rule ? 'unchanged unless entered' : ''}
                value={hook.secret}
                onInput={(e) =>
                  set({
                    notifyTouched: true,
                    webhooks: draft.webhooks.map((h, i) =>
                      i === index
                        ? { ...h, secret: (e.currentTarget as HTMLInputElement).value }
                        : h,
                    ),
                  })
                }
              />
            </div>
          </div>
        ))}
        <button
          type="button"
          class="button button-ghost"
          onClick={() =>
            set({ notifyTouched: true, webhooks: [...draft.webhooks, { url: '', secret: '' }] })
          }
        >
          Add webhook
        </button>
      </div>
      <label class="span-all checkbox">
        <input
          type="checkbox"
          checked={draft.enabled}
          onChange={(e) => set({ enabled: (e.currentTarget as HTMLInputElement).checked })}
        />{' '}
        Enabled
      </label>
      <div class="form-actions span-all">
        <button type="submit" class="button button-primary" disabled={busy}>
          {rule ? 'Save rule' : 'Create rule'}
        </button>
        <button type="button" class="button button-ghost" onClick={() => onDone(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}
