import { Unauthenticated } from '../../domain-errors.ts';
import type { Caller, Role } from './caller.ts';

/** Port: the user's rights as they are now, read for every authenticated request. */
export interface SessionDirectory {
  /** null when the user no longer exists (in that tenant). */
  current(userId: number, tenantId: number): Promise<{ role: Role; tokenVersion: number } | null>;
}

/** Port: ends a user's open live connections (WebSockets) once their session has ended. */
export interface LiveSessionCloser {
  endLiveSessions(tenantId: number, userId: number): Promise<void>;
}

export interface TokenVerifier {
  verify(token: string): Promise<Caller>;
}

/**
 * A verified token is not enough: the user must still exist with the token's version, and
 * the role that counts is the one they hold now. A role change, password change, sign-out
 * or deletion therefore takes effect on the very next request.
 */
export class Authenticator {
  constructor(
    private readonly tokens: TokenVerifier,
    private readonly sessions: SessionDirectory,
  ) {}

  async authenticate(token: string): Promise<Caller> {
    const claimed = await this.tokens.verify(token);
    const current = await this.sessions.current(claimed.userId, claimed.tenantId);
    if (!current || current.tokenVersion !== claimed.tokenVersion) {
      throw new Unauthenticated('unauthorized', 'This session has ended; sign in again');
    }
    return { ...claimed, role: current.role };
  }
}
