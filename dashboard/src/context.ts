import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from './api.ts';
import type { RuntimeConfig } from './config.ts';
import type { LiveState } from './live.ts';
import type { LiveEvent, Profile, Role } from './types.ts';

export type LiveListener = (events: LiveEvent[]) => void;

export interface AppContextValue {
  config: RuntimeConfig;
  api: Api;
  profile: Profile;
  live: LiveState;
  /** Registers a listener for WebSocket events; returns the unsubscribe function. */
  onLive: (listener: LiveListener) => () => void;
  /** Says which devices a page shows (null: the page is gone); only those are pushed. */
  watchDevices: (page: symbol, deviceIds: readonly number[] | null) => void;
  signOut: (message?: string) => void;
}

export const AppContext = createContext<AppContextValue | null>(null);

export function useApp(): AppContextValue {
  const value = useContext(AppContext);
  if (!value) throw new Error('useApp outside a signed-in AppContext');
  return value;
}

export function mayWrite(role: Role): boolean {
  return role === 'owner' || role === 'admin';
}

/** Subscribes to live events with the latest callback, without resubscribing on each render. */
export function useLiveEvents(listener: LiveListener): void {
  const { onLive } = useApp();
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => onLive((events) => latest.current(events)), [onLive]);
}

/** Asks for live events of these devices while the calling page is mounted. */
export function useWatchedDevices(deviceIds: readonly number[]): void {
  const { watchDevices } = useApp();
  const [page] = useState(() => Symbol('page'));
  const key = deviceIds.join(',');
  useEffect(() => watchDevices(page, deviceIds), [watchDevices, page, key]);
  useEffect(() => () => watchDevices(page, null), [watchDevices, page]);
}

/** Re-renders every `ms`, so relative times ("12 s ago") stay true. */
export function useNow(ms = 5_000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(timer);
  }, [ms]);
  return now;
}

/** Runs `task` every `ms` while `active`; used as the fallback when the WebSocket is down. */
export function useInterval(task: () => void, ms: number, active: boolean): void {
  const latest = useRef(task);
  latest.current = task;
  useEffect(() => {
    if (!active) return;
    const timer = window.setInterval(() => latest.current(), ms);
    return () => window.clearInterval(timer);
  }, [ms, active]);
}
