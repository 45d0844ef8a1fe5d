import type pg from 'pg';
import {
  inTenantTransaction,
  inTransaction,
  isUniqueViolation,
  type Queryable,
  setTenantContext,
} from '../../db/postgres.ts';
import { Conflict } from '../../domain-errors.ts';
import type { AccountStore } from '../domain/account-store.ts';
import type { Role } from '../domain/caller.ts';
import type {
  LoginCandidate,
  Plan,
  PlanName,
  Tenant,
  TenantOverview,
  User,
} from '../domain/model.ts';
import { assertWithinPlanLimit } from './postgres-plan-limits.ts';

const TENANT_COLUMNS = `t.id, t.name, t.plan, tp.plan AS effective_plan, t.status,
  to_json(t.trial_ends_at) #>> '{}' AS trial_ends_at, to_json(t.created_at) #>> '{}' AS created_at`;
const USER_COLUMNS = `u.id, u.tenant_id, u.username, u.email, u.role,
  to_json(u.last_login_at) #>> '{}' AS last_login_at, to_json(u.created_at) #>> '{}' AS created_at`;

function conflictFromUniqueViolation(error: unknown): unknown {
  if (isUniqueViolation(error, 'users_username_key')) {
    return new Conflict('username_taken', 'That username is already taken');
  }
  if (isUniqueViolation(error, 'users_email_key')) {
    return new Conflict('email_taken', 'That email is already registered');
  }
  if (isUniqueViolation(error, 'idx_tenants_name')) {
    return new Conflict('tenant_name_taken', 'That organisation name is already taken');
  }
  return error;
}

async function selectTenant(client: Queryable): Promise<Tenant> {
  const { rows } = await client.query<Tenant>(
    `SELECT ${TENANT_COLUMNS} FROM tenants t JOIN tenant_plan tp ON tp.tenant_id = t.id`,
  );
  if (!rows[0]) throw new Error('tenant context set but tenant row not visible');
  return rows[0];
}

async function selectUser(client: Queryable, userId: number): Promise<User | null> {
  const { rows } = await client.query<User>(`SELECT ${USER_COLUMNS} FROM users u WHERE u.id = $1`, [
    userId,
  ]);
  return rows[0] ?? null;
}

export class PostgresAccountStore implements AccountStore {
  constructor(private readonly pool: pg.Pool) {}

  async createTenantWithOwner(input: {
    tenantName: string;
    plan: PlanName;
    username: string;
    email: string;
    passwordHash: string;
  }): Promise<{ tenant: Tenant; user: User }> {
    try {
      return await inTransaction(this.pool, async (client) => {
        // The new id is drawn first so the row can be inserted under its own tenant context.
        const { rows } = await client.query<{ id: number }>(
          `SELECT nextval(pg_get_serial_sequence('tenants', 'id'))::integer AS id`,
        );
        const tenantId = rows[0]?.id as number;
        await setTenantContext(client, tenantId);
        await client.query(`INSERT INTO tenants (id, name, plan) VALUES ($1, $2, $3)`, [
          tenantId,
          input.tenantName,
          input.plan,
        ]);
        const inserted = await client.query<{ id: number }>(
          `INSERT INTO users (tenant_id, username, email, password, role)
           VALUES ($1, $2, $3, $4, 'owner') RETURNING id`,
          [tenantId, input.username, input.email, input.passwordHash],
        );
        const userId = inserted.rows[0]?.id as number;
        await client.query(
          `INSERT INTO audit_log (tenant_id, user_id, action, target) VALUES ($1, $2, 'tenant.register', $3)`,
          [tenantId, userId, `tenant:${tenantId}`],
        );
        return {
          tenant: await selectTenant(client),
          user: (await selectUser(client, userId)) as User,
        };
      });
    } catch (error) {
      throw conflictFromUniqueViolation(error);
    }
  }

  async findLoginCandidate(login: string): Promise<LoginCandidate | null> {
    const { rows } = await this.pool.query<{
      user_id: number;
      tenant_id: number;
      password_hash: string;
    }>(`SELECT * FROM auth_find_user($1)`, [login]);
    const row = rows[0];
    return row
      ? { userId: row.user_id, tenantId: row.tenant_id, passwordHash: row.password_hash }
      : null;
  }

  async recordFailedLogin(candidate: LoginCandidate): Promise<void> {
    await this.audit(
      candidate.tenantId,
      candidate.userId,
      'auth.login_failed',
      `user:${candidate.userId}`,
    );
  }

  async recordSuccessfulLogin(candidate: LoginCandidate) {
    return inTenantTransaction(this.pool, candidate.tenantId, async (client) => {
      const { rows } = await client.query<{ token_version: number }>(
        `UPDATE users SET last_login_at = now() WHERE id = $1 RETURNING token_version`,
        [candidate.userId],
      );
      // A sign-in is on the audit trail, as a failed one is.
      await client.query(
        `INSERT INTO audit_log (tenant_id, user_id, action, target) VALUES ($1, $2, 'auth.login', $3)`,
        [candidate.tenantId, candidate.userId, `user:${candidate.userId}`],
      );
      const user = (await selectUser(client, candidate.userId)) as User;
      return { ...user, token_version: rows[0]?.token_version ?? 0 };
    });
  }

  async passwordHashOf(tenantId: number, userId: number): Promise<string | null> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{ password: string }>(
        `SELECT password FROM users WHERE id = $1`,
        [userId],
      );
      return rows[0]?.password ?? null;
    });
  }

  async setPassword(tenantId: number, userId: number, passwordHash: string): Promise<number> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{ token_version: number }>(
        `UPDATE users SET password = $2, token_version = token_version + 1 WHERE id = $1
         RETURNING token_version`,
        [userId, passwordHash],
      );
      return rows[0]?.token_version ?? 0;
    });
  }

  async endSessions(tenantId: number, userId: number): Promise<void> {
    await inTenantTransaction(this.pool, tenantId, (client) =>
      client.query(`UPDATE users SET token_version = token_version + 1 WHERE id = $1`, [userId]),
    );
  }

  async getProfile(tenantId: number, userId: number) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const user = await selectUser(client, userId);
      if (!user) return null;
      return { user, tenant: await selectTenant(client) };
    });
  }

  async getOverview(tenantId: number): Promise<TenantOverview> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const tenant = await selectTenant(client);
      const plan = await client.query<Plan>(`SELECT * FROM plans WHERE name = $1`, [
        tenant.effective_plan,
      ]);
      const usage = await client.query<{ devices: number; users: number; entities: number }>(
        `SELECT (SELECT count(*) FROM devices)::integer AS devices,
                (SELECT count(*) FROM users)::integer AS users,
                (SELECT count(*) FROM entities)::integer AS entities`,
      );
      return {
        tenant,
        plan: plan.rows[0] as Plan,
        usage: usage.rows[0] as TenantOverview['usage'],
      };
    });
  }

  async listUsers(tenantId: number): Promise<User[]> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<User>(
        `SELECT ${USER_COLUMNS} FROM users u ORDER BY u.id`,
      );
      return rows;
    });
  }

  async addUser(
    tenantId: number,
    input: { username: string; email: string; passwordHash: string; role: Role },
  ): Promise<User> {
    try {
      return await inTenantTransaction(this.pool, tenantId, async (client) => {
        await assertWithinPlanLimit(client, 'users');
        const inserted = await client.query<{ id: number }>(
          `INSERT INTO users (tenant_id, username, email, password, role)
           VALUES ($1, $2, $3, $4, $5) RETURNING id`,
          [tenantId, input.username, input.email, input.passwordHash, input.role],
        );
        return (await selectUser(client, inserted.rows[0]?.id as number)) as User;
      });
    } catch (error) {
      throw conflictFromUniqueViolation(error);
    }
  }

  async changeUserRole(
    tenantId: number,
    userId: number,
    role: Role,
    allowed: (current: User) => void,
  ): Promise<User | null> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      await client.query(`SELECT id FROM tenants FOR UPDATE`);
      const current = await selectUser(client, userId);
      if (!current) return null;
      allowed(current);
      await client.query(
        `UPDATE users SET role = $2, token_version = token_version + 1
         WHERE id = $1 AND role IS DISTINCT FROM $2`,
        [userId, role],
      );
      await this.#assertOwnerRemains(client);
      return selectUser(client, userId);
    });
  }

  async removeUser(
    tenantId: number,
    userId: number,
    allowed: (current: User) => void,
  ): Promise<boolean> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      await client.query(`SELECT id FROM tenants FOR UPDATE`);
      const current = await selectUser(client, userId);
      if (!current) return false;
      allowed(current);
      await client.query(`DELETE FROM users WHERE id = $1`, [userId]);
      await this.#assertOwnerRemains(client);
      return true;
    });
  }

  async #assertOwnerRemains(client: Queryable): Promise<void> {
    const { rows } = await client.query<{ owners: number }>(
      `SELECT count(*)::integer AS owners FROM users WHERE role = 'owner'`,
    );
    if (!rows[0]?.owners) {
      throw new Conflict('last_owner', 'A tenant must keep at least one owner');
    }
  }

  async audit(
    tenantId: number,
    userId: number | null,
    action: string,
    target: string,
    details?: object,
  ): Promise<void> {
    await inTenantTransaction(this.pool, tenantId, (client) =>
      client.query(
        `INSERT INTO audit_log (tenant_id, user_id, action, target, details) VALUES ($1, $2, $3, $4, $5)`,
        [tenantId, userId, action, target, details ? JSON.stringify(details) : null],
      ),
    );
  }
}
