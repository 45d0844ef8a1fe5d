import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Api, describeError } from '../api.ts';
import type { RuntimeConfig } from '../config.ts';
import { AppContext, type AppContextValue, type LiveListener } from '../context.ts';
import { LiveConnection, type LiveState } from '../live.ts';
import { href, navigate, useRoute } from '../router.ts';
import {
  clearSession,
  loadSession,
  type Session,
  saveSession,
  sessionFromToken,
} from '../session.ts';
import type { Profile } from '../types.ts';
import { ActivityPage } from './ActivityPage.tsx';
import { AlarmsPage } from './AlarmsPage.tsx';
import { SignIn, SignUp } from './Auth.tsx';
import { DevicePage } from './DevicePage.tsx';
import { DevicesPage } from './DevicesPage.tsx';
import { ModelsPage } from './ModelsPage.tsx';
import { Shell } from './Shell.tsx';
import { TenantPage } from './TenantPage.tsx';
import { EmptyState, ErrorPanel, Loading } from './ui.tsx';

// setTimeout takes a 32-bit delay; longer sessions re-arm the timer instead.
const MAX_TIMER_MS = 2_000_000_000;

export function App({ config }: { config: RuntimeConfig }) {
  const route = useRoute();
  const [session, setSession] = useState<Session | null>(loadSession);
  const [message, setMessage] = useState<string | null>(null);
  const [profile, setProfile] = useState<Profile | null>(null);
  const [profileError, setProfileError] = useState<string | null>(null);
  const [live, setLive] = useState<LiveState>(config.wsUrl ? 'connecting' : 'unavailable');
  const sessionRef = useRef(session);
  sessionRef.current = session;
  const listeners = useRef(new Set<LiveListener>());

  const endSession = useCallback((reason?: string) => {
    clearSession();
    sessionRef.current = null;
    setSession(null);
    setProfile(null);
    setMessage(reason ?? null);
  }, []);

  const api = useMemo(
    () =>
      new Api({
        baseUrl: config.apiUrl,
        token: () => sessionRef.current?.token ?? null,
        onUnauthorized: (reason) => {
          if (sessionRef.current) endSession(reason);
        },
      }),
    [config.apiUrl, endSession],
  );

  const signedIn = (token: string, expiresIn?: number) => {
    const next = sessionFromToken(token, expiresIn);
    saveSession(next);
    setMessage(null);
    setSession(next);
    if (route.name === 'signin' || route.name === 'signup')
      navigate({ name: 'devices' }, { replace: true });
  };

  useEffect(() => {
    if (!session) return;
    let timer: number;
    const arm = () => {
      const remaining = session.expiresAt - Date.now() - 5_000;
      if (remaining <= 0) {
        endSession('Your session expired. Sign in again to continue where you left off.');
        return;
      }
      timer = window.setTimeout(arm, Math.min(remaining, MAX_TIMER_MS));
    };
    arm();
    return () => window.clearTimeout(timer);
  }, [session, endSession]);

  const loadProfile = useCallback(() => {
    setProfileError(null);
    api.me().then(setProfile, (error: unknown) => {
      if (sessionRef.current) setProfileError(describeError(error));
    });
  }, [api]);

  useEffect(() => {
    if (session) loadProfile();
  }, [session?.token, loadProfile]);

  const watched = useRef(new Map<symbol, readonly number[]>());
  const connectionRef = useRef<LiveConnection | null>(null);
  const allWatched = () => new Set([...watched.current.values()].flat());
  const watchDevices = useCallback((page: symbol, deviceIds: readonly number[] | null) => {
    if (deviceIds) watched.current.set(page, deviceIds);
    else watched.current.delete(page);
    connectionRef.current?.watch(allWatched());
  }, []);

  useEffect(() => {
    if (!session || !config.wsUrl) return;
    const connection = new LiveConnection({
      url: config.wsUrl,
      token: () => sessionRef.current?.token ?? null,
      onState: setLive,
      onEvents: (events) => {
        for (const listener of listeners.current) listener(events);
      },
    });
    connectionRef.current = connection;
    connection.watch(allWatched());
    connection.start();
    const wake = () => {
      if (document.visibilityState === 'visible') connection.nudge();
    };
    document.addEventListener('visibilitychange', wake);
    window.addEventListener('online', wake);
    return () => {
      document.removeEventListener('visibilitychange', wake);
      window.removeEventListener('online', wake);
      connectionRef.current = null;
      connection.stop();
    };
  }, [session?.token, config.wsUrl]);

  const onLive = useCallback((listener: LiveListener) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);

  const signOut = useCallback(
    (reason?: string) => {
      endSession(reason);
      navigate({ name: 'signin' });
    },
    [endSession],
  );

  if (!session) {
    if (route.name === 'signup') return <SignUp api={api} onSignedIn={signedIn} />;
    return <SignIn api={api} onSignedIn={signedIn} message={message} />;
  }
  if (route.name === 'signin' || route.name === 'signup') {
    navigate({ name: 'devices' }, { replace: true });
    return null;
  }
  if (!profile) {
    return (
      <main class="page">
        {profileError ? (
          <ErrorPanel message={profileError} onRetry={loadProfile} />
        ) : (
          <Loading label="Loading your account…" />
        )}
      </main>
    );
  }

  const context: AppContextValue = { config, api, profile, live, onLive, watchDevices, signOut };
  return (
    <AppContext.Provider value={context}>
      <Shell route={route}>
        {route.name === 'devices' && <DevicesPage />}
        {route.name === 'device' && <DevicePage key={route.id} id={route.id} />}
        {route.name === 'tenant' && <TenantPage />}
        {route.name === 'alarms' && <AlarmsPage />}
        {route.name === 'activity' && <ActivityPage />}
        {route.name === 'models' && <ModelsPage />}
        {route.name === 'notfound' && (
          <EmptyState
            title="This page does not exist"
            action={
              <a class="button" href={href({ name: 'devices' })}>
                Go to devices
              </a>
            }
          >
            <p>
              Nothing lives at <code>{route.path}</code>.
            </p>
          </EmptyState>
        )}
      </Shell>
    </AppContext.Provider>
  );
}
