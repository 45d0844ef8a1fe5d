export type Role = 'owner' | 'admin' | 'viewer';

/** Who is calling, as proven by a verified access token. */
export interface Caller {
  userId: number;
  tenantId: number;
  role: Role;
  /** The user's token version when the token was issued; a session is over once it moved. */
  tokenVersion: number;
}
