import type { LoginCandidate, PlanName, Tenant, TenantOverview, User } from './model.ts';
import type { Role } from './tokens.ts';

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
  recordFailedLogin(
    candidate: LoginCandidate,
    policy: { maxFailures: number; lockSeconds: number },
  ): Promise<void>;
  recordSuccessfulLogin(candidate: LoginCandidate): Promise<User>;

  getProfile(tenantId: number, userId: number): Promise<{ user: User; tenant: Tenant } | null>;
  getOverview(tenantId: number): Promise<TenantOverview>;

  listUsers(tenantId: number): Promise<User[]>;
  /** Enforces the plan's user limit; a taken username or email is a conflict. */
  addUser(
    tenantId: number,
    input: { username: string; email: string; passwordHash: string; role: Role },
  ): Promise<User>;
  /** Refuses to leave the tenant without an owner. */
  changeUserRole(tenantId: number, userId: number, role: Role): Promise<User | null>;
  removeUser(tenantId: number, userId: number): Promise<boolean>;
  audit(
    tenantId: number,
    userId: number | null,
    action: string,
    target: string,
    details?: object,
  ): Promise<void>;
}
