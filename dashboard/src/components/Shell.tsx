import type { ComponentChildren } from 'preact';
import { mayWrite, useApp } from '../context.ts';
import type { LiveState } from '../live.ts';
import { href, type Route } from '../router.ts';
import { ActiveAlarmsBadge } from './AlarmsPage.tsx';

const LIVE_LABELS: Record<LiveState, string> = {
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  unavailable: 'Live off',
  closed: 'Offline',
};

const LIVE_TITLES: Record<LiveState, string> = {
  connecting: 'Opening the live connection',
  open: 'Values update as devices report them',
  reconnecting: 'The live connection dropped; retrying. Values refresh every 15 s meanwhile.',
  unavailable:
    'Live updates are not configured (no wsUrl in config.json); values refresh every 15 s.',
  closed: 'Live updates are stopped',
};

export function Shell({ route, children }: { route: Route; children: ComponentChildren }) {
  const { profile, live, signOut } = useApp();
  const current = (name: Route['name']) =>
    route.name === name || (name === 'devices' && route.name === 'device') ? 'page' : undefined;
  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href={href({ name: 'devices' })}>
          <span class="logo" aria-hidden="true" />
          EasySmart
        </a>
        <nav aria-label="Main">
          <a href={href({ name: 'devices' })} aria-current={current('devices')}>
            Devices
          </a>
          <a href={href({ name: 'alarms' })} aria-current={current('alarms')}>
            Alarms <ActiveAlarmsBadge />
          </a>
          <a href={href({ name: 'models' })} aria-current={current('models')}>
            Models
          </a>
          {mayWrite(profile.user.role) && (
            <a href={href({ name: 'activity' })} aria-current={current('activity')}>
              Activity
            </a>
          )}
          <a href={href({ name: 'tenant' })} aria-current={current('tenant')}>
            Organisation
          </a>
        </nav>
        <div class="topbar-end">
          <span class={`live live-${live}`} title={LIVE_TITLES[live]} role="status">
            <span class="dot" aria-hidden="true" />
            {LIVE_LABELS[live]}
          </span>
          <span
            class="who"
            title={`${profile.user.username} (${profile.user.role}) in ${profile.tenant.name}`}
          >
            <span class="who-tenant">{profile.tenant.name}</span>
            <span class="who-user">
              {profile.user.username} · {profile.user.role}
            </span>
          </span>
          <button
            type="button"
            class="button button-ghost"
            onClick={() => signOut('You signed out.')}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main" class="page" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}
