import { NotFound, NotPermitted, Unauthenticated } from '../../domain-errors.ts';
import type { AccountStore } from './account-store.ts';
import type { Caller, Role } from './caller.ts';
import type { AccessTokenIssuer, PasswordHasher } from './credentials.ts';
import type { PlanName, Tenant, User } from './model.ts';
import { assertAcceptablePassword } from './password-policy.ts';
import type { LiveSessionCloser } from './sessions.ts';
import {
  admitOrRefuse,
  type BackoffPolicy,
  type ThrottledKey,
  type ThrottleStore,
} from './throttle.ts';
import type { WorkQueue } from './work-queue.ts';

/** How hard sign-in and sign-up are throttled (config: LOGIN_*, SIGNUP_*). */
export interface ThrottlePolicies {
  /** One login from one source address: the tightest, it stops a single guesser. */
  accountFromSource: BackoffPolicy;
  /** One login from anywhere: a low cap on the wait, so an attacker cannot lock the owner out. */
  account: BackoffPolicy;
  /** Every sign-in from one source address, whichever login. */
  source: BackoffPolicy;
  /** Sign-ups from one source address. */
  signUpSource: BackoffPolicy;
}

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface AccountServiceOptions {
  store: AccountStore;
  passwords: PasswordHasher;
  /**
   * Every request that runs bcrypt holds a place here from its start, so a burst beyond
   * the queue is answered busy (503) at once, before any database or CPU work.
   */
  passwordWork: WorkQueue;
  tokens: AccessTokenIssuer;
  throttle: ThrottleStore;
  policies: ThrottlePolicies;
  liveSessions: LiveSessionCloser;
  clock?: Clock;
}

/** What a sign-up asks for. */
export interface Registration {
  tenant_name: string;
  username: string;
  email: string;
  password: string;
  plan?: PlanName;
}

export class AccountService {
  private readonly store: AccountStore;
  private readonly passwords: PasswordHasher;
  private readonly passwordWork: WorkQueue;
  private readonly tokens: AccessTokenIssuer;
  private readonly throttle: ThrottleStore;
  private readonly policies: ThrottlePolicies;
  private readonly liveSessions: LiveSessionCloser;
  private readonly clock: Clock;

  constructor(options: AccountServiceOptions) {
    this.store = options.store;
    this.passwords = options.passwords;
    this.passwordWork = options.passwordWork;
    this.tokens = options.tokens;
    this.throttle = options.throttle;
    this.policies = options.policies;
    this.liveSessions = options.liveSessions;
    this.clock = options.clock ?? systemClock;
  }

  async register(
    input: Registration,
    source: string,
  ): Promise<{
    token: string;
    token_type: 'Bearer';
    expires_in: number;
    user: User;
    tenant: Tenant;
  }> {
    assertAcceptablePassword(input.password);
    return this.passwordWork.run(() => this.#register(input, source));
  }

  async #register(input: Registration, source: string) {
    await admitOrRefuse(
      this.throttle,
      [{ key: `signup-source:${source}`, policy: this.policies.signUpSource }],
      this.clock.now(),
    );
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
      tokenVersion: 0,
    });
    return {
      token,
      token_type: 'Bearer' as const,
      expires_in: this.tokens.ttlSeconds,
      user,
      tenant,
    };
  }

  /**
   * A wrong password and an unknown login get the same 401, after the same work (a bcrypt
   * comparison against a decoy hash) and the same throttling: keys are derived from the
   * login as typed when no account has it, so a 429 says nothing about which accounts exist.
   * Every attempt is counted before its password is checked, so parallel guesses cannot
   * get more checks than sequential ones.
   */
  login(input: { username: string; password: string }, source: string) {
    return this.passwordWork.run(() => this.#login(input, source));
  }

  async #login(input: { username: string; password: string }, source: string) {
    const candidate = await this.store.findLoginCandidate(input.username);
    const account = candidate
      ? `user:${candidate.userId}`
      : `login:${input.username.trim().toLowerCase()}`;
    const keys: ThrottledKey[] = [
      {
        key: `signin-account-source:${account}|${source}`,
        policy: this.policies.accountFromSource,
      },
      { key: `signin-account:${account}`, policy: this.policies.account },
      { key: `signin-source:${source}`, policy: this.policies.source },
    ];
    await admitOrRefuse(this.throttle, keys, this.clock.now());
    const valid = await this.passwords.verify(input.password, candidate?.passwordHash);
    if (!candidate || !valid) {
      if (candidate) await this.store.recordFailedLogin(candidate);
      throw new Unauthenticated('unauthorized', 'Wrong username or password');
    }
    // A success clears this login's record and gives the address back its attempt, so
    // colleagues behind one NAT are not throttled by each other's sign-ins.
    await this.throttle.settle(
      [keys[0]?.key as string, keys[1]?.key as string],
      [keys[2]?.key as string],
    );
    const user = await this.store.recordSuccessfulLogin(candidate);
    const token = await this.tokens.issue({
      userId: user.id,
      tenantId: user.tenant_id,
      role: user.role,
      tokenVersion: user.token_version,
    });
    return { token, token_type: 'Bearer' as const, expires_in: this.tokens.ttlSeconds };
  }

  /**
   * Changes the caller's own password; every other session of the user ends (their tokens
   * and WebSockets), and the answer carries a fresh token for this one.
   */
  async changePassword(
    caller: Caller,
    input: { current_password: string; new_password: string },
    source: string,
  ) {
    assertAcceptablePassword(input.new_password);
    return this.passwordWork.run(() => this.#changePassword(caller, input, source));
  }

  async #changePassword(
    caller: Caller,
    input: { current_password: string; new_password: string },
    source: string,
  ) {
    const account = `user:${caller.userId}`;
    const keys: ThrottledKey[] = [
      {
        key: `signin-account-source:${account}|${source}`,
        policy: this.policies.accountFromSource,
      },
      { key: `signin-account:${account}`, policy: this.policies.account },
    ];
    await admitOrRefuse(this.throttle, keys, this.clock.now());
    const currentHash = await this.store.passwordHashOf(caller.tenantId, caller.userId);
    if (!currentHash) throw new Unauthenticated('unauthorized', 'This account no longer exists');
    if (!(await this.passwords.verify(input.current_password, currentHash))) {
      throw new NotPermitted('wrong_password', 'The current password is wrong');
    }
    await this.throttle.settle([keys[0]?.key as string, keys[1]?.key as string], []);
    const passwordHash = await this.passwords.hash(input.new_password);
    const tokenVersion = await this.store.setPassword(caller.tenantId, caller.userId, passwordHash);
    await this.liveSessions.endLiveSessions(caller.tenantId, caller.userId);
    await this.store.audit(
      caller.tenantId,
      caller.userId,
      'auth.password',
      `user:${caller.userId}`,
    );
    const token = await this.tokens.issue({ ...caller, tokenVersion });
    return { token, token_type: 'Bearer' as const, expires_in: this.tokens.ttlSeconds };
  }

  /** Ends every session of the caller: all their tokens stop working, WebSockets close. */
  async logout(caller: Caller): Promise<void> {
    await this.store.endSessions(caller.tenantId, caller.userId);
    await this.liveSessions.endLiveSessions(caller.tenantId, caller.userId);
    await this.store.audit(caller.tenantId, caller.userId, 'auth.logout', `user:${caller.userId}`);
  }

  async me(caller: Caller) {
    const profile = await this.store.getProfile(caller.tenantId, caller.userId);
    // A token for a deleted user must stop working even before it expires.
    if (!profile) throw new Unauthenticated('unauthorized', 'This account no longer exists');
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
    assertAcceptablePassword(input.password);
    const passwordHash = await this.passwordWork.run(() => this.passwords.hash(input.password));
    const user = await this.store.addUser(caller.tenantId, { ...input, passwordHash });
    await this.store.audit(caller.tenantId, caller.userId, 'user.add', `user:${user.id}`, {
      role: user.role,
    });
    return user;
  }

  /** A changed role ends the user's sessions: they sign in again with the rights they now have. */
  async changeUserRole(caller: Caller, userId: number, role: Role): Promise<User> {
    this.#assertMayGrant(caller, role);
    const user = await this.store.changeUserRole(caller.tenantId, userId, role, (current) =>
      this.#assertMayChangeOwner(caller, current),
    );
    if (!user) throw new NotFound('user_not_found', 'No such user');
    await this.liveSessions.endLiveSessions(caller.tenantId, userId);
    await this.store.audit(caller.tenantId, caller.userId, 'user.role', `user:${userId}`, { role });
    return user;
  }

  async removeUser(caller: Caller, userId: number): Promise<void> {
    const removed = await this.store.removeUser(caller.tenantId, userId, (current) =>
      this.#assertMayChangeOwner(caller, current),
    );
    if (!removed) {
      throw new NotFound('user_not_found', 'No such user');
    }
    await this.liveSessions.endLiveSessions(caller.tenantId, userId);
    await this.store.audit(caller.tenantId, caller.userId, 'user.remove', `user:${userId}`);
  }

  /** Only an owner changes or removes an owner (the store keeps at least one). */
  #assertMayChangeOwner(caller: Caller, target: User): void {
    if (target.role === 'owner' && caller.role !== 'owner') {
      throw new NotPermitted('insufficient_role', 'Only an owner may change or remove an owner');
    }
  }

  #assertMayGrant(caller: Caller, role: Role): void {
    if (role === 'owner' && caller.role !== 'owner') {
      throw new NotPermitted('insufficient_role', 'Only an owner may grant the owner role');
    }
  }
}
