import { HttpError, notFound, unauthorized } from '../http/errors.ts';
import type { AccountStore } from './account-store.ts';
import type { PlanName, Tenant, User } from './model.ts';
import type { PasswordHasher } from './passwords.ts';
import type { AccessTokens, Caller, Role } from './tokens.ts';

export interface LoginPolicy {
  maxFailures: number;
  lockSeconds: number;
}

export class AccountService {
  constructor(
    private readonly store: AccountStore,
    private readonly passwords: PasswordHasher,
    private readonly tokens: AccessTokens,
    private readonly loginPolicy: LoginPolicy,
  ) {}

  async register(input: {
    tenant_name: string;
    username: string;
    email: string;
    password: string;
    plan?: PlanName;
  }): Promise<{
    token: string;
    token_type: 'Bearer';
    expires_in: number;
    user: User;
    tenant: Tenant;
  }> {
    const passwordHash = await this.passwords.hash(input.password);
    const { tenant, user } = await this.store.createTenantWithOwner({
      tenantName: input.tenant_name,
      plan: input.plan ?? 'free',
      username: input.username,
      email: input.email,
      passwordHash,
    });
    const token = await this.tokens.issue({
      userId: user.id,
      tenantId: tenant.id,
      role: user.role,
    });
    return { token, token_type: 'Bearer', expires_in: this.tokens.ttlSeconds, user, tenant };
  }

  /**
   * Every wrong login or password is the same 401; a locked account answers 429 with
   * Retry-After until the lock ends, even for the right password.
   */
  async login(input: { username: string; password: string }) {
    const candidate = await this.store.findLoginCandidate(input.username);
    const now = Date.now();
    if (candidate?.lockedUntil && candidate.lockedUntil.getTime() > now) {
      const retryAfter = Math.ceil((candidate.lockedUntil.getTime() - now) / 1000);
      throw new HttpError(
        429,
        'too_many_attempts',
        'Too many failed sign-in attempts; try again later',
        { headers: { 'retry-after': String(retryAfter) } },
      );
    }
    const valid = await this.passwords.verify(input.password, candidate?.passwordHash);
    if (!candidate || !valid) {
      if (candidate) await this.store.recordFailedLogin(candidate, this.loginPolicy);
      throw unauthorized('Wrong username or password');
    }
    const user = await this.store.recordSuccessfulLogin(candidate);
    const token = await this.tokens.issue({
      userId: user.id,
      tenantId: user.tenant_id,
      role: user.role,
    });
    return { token, token_type: 'Bearer' as const, expires_in: this.tokens.ttlSeconds };
  }

  async me(caller: Caller) {
    const profile = await this.store.getProfile(caller.tenantId, caller.userId);
    // A token for a deleted user must stop working even before it expires.
    if (!profile) throw unauthorized('This account no longer exists');
    return profile;
  }

  tenantOverview(caller: Caller) {
    return this.store.getOverview(caller.tenantId);
  }

  listUsers(caller: Caller) {
    return this.store.listUsers(caller.tenantId);
  }

  async addUser(
    caller: Caller,
    input: { username: string; email: string; password: string; role: Role },
  ): Promise<User> {
    this.#assertMayGrant(caller, input.role);
    const passwordHash = await this.passwords.hash(input.password);
    const user = await this.store.addUser(caller.tenantId, { ...input, passwordHash });
    await this.store.audit(caller.tenantId, caller.userId, 'user.add', `user:${user.id}`, {
      role: user.role,
    });
    return user;
  }

  async changeUserRole(caller: Caller, userId: number, role: Role): Promise<User> {
    this.#assertMayGrant(caller, role);
    const user = await this.store.changeUserRole(caller.tenantId, userId, role);
    if (!user) throw notFound('user_not_found', 'No such user');
    await this.store.audit(caller.tenantId, caller.userId, 'user.role', `user:${userId}`, { role });
    return user;
  }

  async removeUser(caller: Caller, userId: number): Promise<void> {
    if (caller.role !== 'owner' && userId !== caller.userId) {
      const target = (await this.store.listUsers(caller.tenantId)).find((u) => u.id === userId);
      if (target?.role === 'owner') {
        throw new HttpError(403, 'insufficient_role', 'Only an owner may remove an owner');
      }
    }
    if (!(await this.store.removeUser(caller.tenantId, userId))) {
      throw notFound('user_not_found', 'No such user');
    }
    await this.store.audit(caller.tenantId, caller.userId, 'user.remove', `user:${userId}`);
  }

  #assertMayGrant(caller: Caller, role: Role): void {
    if (role === 'owner' && caller.role !== 'owner') {
      throw new HttpError(403, 'insufficient_role', 'Only an owner may grant the owner role');
    }
  }
}
