/**
 * The access token lives in sessionStorage: it ends with the tab, and another tab or a
 * restarted browser signs in again rather than inheriting a bearer credential.
 */
const KEY = 'easysmart.session';

export interface Session {
  token: string;
  /** Epoch milliseconds after which the API refuses the token. */
  expiresAt: number;
}

function decodeExp(token: string): number | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** `expiresIn` (seconds) backs up a token whose `exp` cannot be read. */
export function sessionFromToken(token: string, expiresIn?: number): Session {
  const exp = decodeExp(token);
  const fallback = Date.now() + (expiresIn ?? 3600) * 1000;
  return { token, expiresAt: exp ?? fallback };
}

export function isExpired(session: Session, now = Date.now()): boolean {
  // A few seconds early, so a request never leaves with a token that dies on the way.
  return now >= session.expiresAt - 5_000;
}

export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const parsed = JSON.parse(raw) as Partial<Session>;
    if (typeof parsed.token !== 'string' || typeof parsed.expiresAt !== 'number') return null;
    const session = { token: parsed.token, expiresAt: parsed.expiresAt };
    return isExpired(session) ? null : session;
  } catch {
    return null;
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}
