import type { Role } from './caller.ts';
import type { LoginCandidate, PlanName, Tenant, TenantOverview, User } from './model.ts';

/** Port: tenants and their users. The PostgreSQL adapter sits beside it. */
export interface AccountStore {
  /** Creates a tenant and its owner together; a taken username or email is a conflict. */
  createTenantWithOwner(input: {
    tenantName: string;
    plan: PlanName;
    username: string;
    email: string;
    passwordHash: string;
  }): Promise<{ tenant: Tenant; user: User }>;

  /** Finds a user by username or email across tenants (login happens before a tenant is known). */
  findLoginCandidate(login: string): Promise<LoginCandidate | null>;
  /** Audits the failure; throttling is the throttle store's. */
  recordFailedLogin(candidate: LoginCandidate): Promise<void>;
  recordSuccessfulLogin(candidate: LoginCandidate): Promise<User & { token_version: number }>;
  passwordHashOf(tenantId: number, userId: number): Promise<string | null>;
  /** Sets the password and ends every session; returns the new token version. */
  setPassword(tenantId: number, userId: number, passwordHash: string): Promise<number>;
  /** Ends every session of the user (their token version moves on). */
  endSessions(tenantId: number, userId: number): Promise<void>;

  getProfile(tenantId: number, userId: number): Promise<{ user: User; tenant: Tenant } | null>;
  getOverview(tenantId: number): Promise<TenantOverview>;

  listUsers(tenantId: number): Promise<User[]>;
  /** Enforces the plan's user limit; a taken username or email is a conflict. */
  addUser(
    tenantId: number,
    input: { username: string; email: string; passwordHash: string; role: Role },
  ): Promise<User>;
  /**
   * Refuses to leave the tenant without an owner; a changed role ends the user's sessions. `allowed` sees the user as it is once
   * the tenant is locked, and throws to refuse; null/false when there is no such user.
   */
  changeUserRole(
    tenantId: number,
    userId: number,
    role: Role,
    allowed: (current: User) => void,
  ): Promise<User | null>;
  removeUser(tenantId: number, userId: number, allowed: (current: User) => void): Promise<boolean>;
  audit(
    tenantId: number,
    userId: number | null,
    action: string,
    target: string,
    details?: object,
  ): Promise<void>;
}
