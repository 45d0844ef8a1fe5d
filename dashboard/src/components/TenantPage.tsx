import { useCallback, useEffect, useState } from 'preact/hooks';
import { PLAN_FEATURES } from '../../../shared/accounts/domain/plan-features.ts';
import { describeError } from '../api.ts';
import { mayWrite, useApp } from '../context.ts';
import { absoluteTime, limit, relativeTime } from '../format.ts';
import type { Role, TenantOverview, User } from '../types.ts';
import { ErrorPanel, Loading, Notice } from './ui.tsx';

const ROLES: Role[] = ['owner', 'admin', 'viewer'];
const ROLE_HELP: Record<Role, string> = {
  owner: 'everything, including other owners',
  admin: 'devices, commands and users, but not owners',
  viewer: 'read-only',
};

export function TenantPage() {
  const { api, profile } = useApp();
  const [overview, setOverview] = useState<TenantOverview | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(() => {
    setError(null);
    api.tenant().then(setOverview, (failure: unknown) => setError(describeError(failure)));
  }, [api]);
  useEffect(load, [load]);

  return (
    <>
      <div class="page-head">
        <div>
          <h1>Organisation</h1>
          <p class="muted">{profile.tenant.name}</p>
        </div>
      </div>
      {error && <ErrorPanel message={error} onRetry={load} />}
      {!overview && !error && <Loading label="Loading plan and usage…" />}
      {overview && <PlanPanel overview={overview} />}
      <UsersPanel onChanged={load} />
    </>
  );
}

function Meter({ label, used, max }: { label: string; used: number; max: number | null }) {
  const ratio = max ? Math.min(used / max, 1) : 0;
  const tone = max && used >= max ? 'full' : ratio >= 0.8 ? 'high' : 'ok';
  return (
    <div class="meter">
      <div class="meter-head">
        <span>{label}</span>
        <span class="mono">
          {used.toLocaleString()} / {limit(max)}
        </span>
      </div>
      {max !== null && (
        // The figures above already say it in words; the bar is for the eye only.
        <div class={`meter-bar meter-${tone}`} aria-hidden="true">
          <span style={{ width: `${ratio * 100}%` }} />
        </div>
      )}
      {tone === 'full' && (
        <p class="small warn">Limit reached: remove one or upgrade the plan to add more.</p>
      )}
    </div>
  );
}

function PlanPanel({ overview }: { overview: TenantOverview }) {
  const { tenant, plan, usage } = overview;
  const yes = (on: boolean | undefined) => (on ? 'Included' : 'Not included');
  const trial = tenant.trial_ends_at;
  return (
    <section class="panel" aria-labelledby="plan-title">
      <div class="section-head">
        <h2 id="plan-title">
          Plan: {plan.display_name}
          {tenant.effective_plan !== tenant.plan && (
            <span class="muted"> (subscribed: {tenant.plan})</span>
          )}
        </h2>
        <span class={`badge ${tenant.status === 'active' ? 'badge-online' : 'badge-offline'}`}>
          {tenant.status === 'active' ? 'Active' : 'Suspended'}
        </span>
      </div>
      {trial && (
        <p class="small muted">
          {Date.parse(trial) > Date.now()
            ? `Trial ends ${absoluteTime(trial)}.`
            : `Trial ended ${relativeTime(trial)}; the free plan's limits apply.`}
        </p>
      )}
      {tenant.status !== 'active' && (
        <Notice tone="warning">
          This organisation is suspended: devices cannot send data. Contact the platform operator.
        </Notice>
      )}
      <div class="meters">
        <Meter label="Devices" used={usage.devices} max={plan.max_devices} />
        <Meter label="Users" used={usage.users} max={plan.max_users} />
      </div>
      <dl class="facts">
        <div>
          <dt>Entities</dt>
          <dd>{usage.entities.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Data retention</dt>
          <dd>{plan.retention_days === null ? 'Unlimited' : `${plan.retention_days} days`}</dd>
        </div>
        <div>
          <dt>Anomaly detection</dt>
          <dd>
            {plan.anomaly_detection === 'none'
              ? 'Not included'
              : `Included (${plan.anomaly_detection})`}
          </dd>
        </div>
        {PLAN_FEATURES.map((feature) => (
          <div key={feature.key} data-feature={feature.key}>
            <dt>{feature.label}</dt>
            <dd>
              {feature.available ? (
                yes(plan[feature.key])
              ) : (
                <span class="muted">Coming: not available yet</span>
              )}
            </dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

function UsersPanel({ onChanged }: { onChanged: () => void }) {
  const { api, profile } = useApp();
  const canManage = mayWrite(profile.user.role);
  const [users, setUsers] = useState<User[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const [busyId, setBusyId] = useState<number | null>(null);

  const load = useCallback(() => {
    setError(null);
    api.users().then(setUsers, (failure: unknown) => setError(describeError(failure)));
  }, [api]);
  useEffect(load, [load]);

  const grantable = (role: Role) => role !== 'owner' || profile.user.role === 'owner';

  const changeRole = async (user: User, role: Role) => {
    setBusyId(user.id);
    setActionError(null);
    try {
      const updated = await api.changeRole(user.id, role);
      setUsers((list) => list?.map((u) => (u.id === updated.id ? updated : u)) ?? null);
    } catch (failure) {
      setActionError(`Could not change ${user.username}'s role: ${describeError(failure)}`);
    } finally {
      setBusyId(null);
    }
  };

  const remove = async (user: User) => {
    if (!window.confirm(`Remove ${user.username}? They lose access at once.`)) return;
    setBusyId(user.id);
    setActionError(null);
    try {
      await api.removeUser(user.id);
      setUsers((list) => list?.filter((u) => u.id !== user.id) ?? null);
      onChanged();
    } catch (failure) {
      setActionError(`Could not remove ${user.username}: ${describeError(failure)}`);
    } finally {
      setBusyId(null);
    }
  };

  return (
    <section class="panel" aria-labelledby="users-title">
      <div class="section-head">
        <h2 id="users-title">Users and roles</h2>
        {canManage && !adding && (
          <button type="button" class="button" onClick={() => setAdding(true)}>
            Add user
          </button>
        )}
      </div>
      <p class="small muted">
        Owners: {ROLE_HELP.owner}. Admins: {ROLE_HELP.admin}. Viewers: {ROLE_HELP.viewer}.
      </p>
      {!canManage && (
        <Notice tone="info">Only owners and admins can add users or change roles.</Notice>
      )}
      {adding && (
        <AddUserForm
          grantable={grantable}
          onAdded={(user) => {
            setUsers((list) => [...(list ?? []), user]);
            setAdding(false);
            onChanged();
          }}
          onCancel={() => setAdding(false)}
        />
      )}
      {actionError && <Notice tone="error">{actionError}</Notice>}
      {error && <ErrorPanel message={error} onRetry={load} />}
      {!users && !error && <Loading label="Loading users…" />}
      {users && (
        <div class="table-scroll">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Role</th>
                <th scope="col" class="hide-phone">
                  Last sign-in
                </th>
                {canManage && (
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {users.map((user) => {
                const self = user.id === profile.user.id;
                const editable = canManage && !self && grantable(user.role);
                return (
                  <tr key={user.id}>
                    <td>
                      <strong>{user.username}</strong>
                      {self && <span class="muted"> (you)</span>}
                      <div class="small muted email">{user.email}</div>
                    </td>
                    <td>
                      {editable ? (
                        <select
                          aria-label={`Role of ${user.username}`}
                          value={user.role}
                          disabled={busyId === user.id}
                          onChange={(e) => void changeRole(user, e.currentTarget.value as Role)}
                        >
                          {ROLES.filter(grantable).map((role) => (
                            <option key={role} value={role}>
                              {role}
                            </option>
                          ))}
                        </select>
                      ) : (
                        <span class={`role role-${user.role}`}>{user.role}</span>
                      )}
                    </td>
                    <td class="small hide-phone">
                      {user.last_login_at ? relativeTime(user.last_login_at) : 'never'}
                    </td>
                    {canManage && (
                      <td class="actions">
                        {editable && (
                          <button
                            type="button"
                            class="button button-small button-danger"
                            disabled={busyId === user.id}
                            aria-label={`Remove ${user.username}`}
                            onClick={() => void remove(user)}
                          >
                            Remove
                          </button>
                        )}
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function AddUserForm({
  grantable,
  onAdded,
  onCancel,
}: {
  grantable: (role: Role) => boolean;
  onAdded: (user: User) => void;
  onCancel: () => void;
}) {
  const { api } = useApp();
  const [form, setForm] = useState({
    username: '',
    email: '',
    password: '',
    role: 'viewer' as Role,
  });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const field = (key: 'username' | 'email' | 'password') => ({
    value: form[key],
    onInput: (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value }),
  });
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onAdded(
        await api.addUser({
          username: form.username.trim(),
          email: form.email.trim(),
          password: form.password,
          role: form.role,
        }),
      );
    } catch (failure) {
      setError(describeError(failure));
      setBusy(false);
    }
  };
  return (
    <form class="subpanel form-grid" onSubmit={submit} aria-labelledby="add-user-title">
      <h3 id="add-user-title" class="span-all">
        Add a user
      </h3>
      {error && (
        <div class="span-all">
          <Notice tone="error">{error}</Notice>
        </div>
      )}
      <div class="field">
        <label for="add-username">Username</label>
        <input
          id="add-username"
          required
          minLength={3}
          maxLength={100}
          pattern="[A-Za-z0-9._\-]+"
          autoComplete="off"
          {...field('username')}
        />
      </div>
      <div class="field">
        <label for="add-email">Email</label>
        <input id="add-email" type="email" required autoComplete="off" {...field('email')} />
      </div>
      <div class="field">
        <label for="add-password">Initial password</label>
        <input
          id="add-password"
          type="password"
          required
          minLength={10}
          autoComplete="new-password"
          aria-describedby="add-password-hint"
          {...field('password')}
        />
        <small id="add-password-hint" class="hint">
          At least 10 characters, not a common password; give it to them in person or over a secure
          channel.
        </small>
      </div>
      <div class="field">
        <label for="add-role">Role</label>
        <select
          id="add-role"
          value={form.role}
          onChange={(e) => setForm({ ...form, role: e.currentTarget.value as Role })}
        >
          {ROLES.filter(grantable).map((role) => (
            <option key={role} value={role}>
              {role}: {ROLE_HELP[role]}
            </option>
          ))}
        </select>
      </div>
      <div class="form-actions span-all">
        <button type="submit" class="button button-primary" disabled={busy}>
          {busy ? 'Adding…' : 'Add user'}
        </button>
        <button type="button" class="button button-ghost" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
