import { NotPermitted } from '../../domain-errors.ts';

/** One change a person made, as the trail keeps it. */
export interface AuditRecord {
  tenantId: number;
  /** Who did it; null for the platform's operator or an unknown login. */
  userId: number | null;
  /** What kind of change: `alarm_rule.create`, `device.update`, `auth.login`, ... */
  action: string;
  /** What it was done to: `alarm_rule:12`, `device:3`. */
  target: string;
  details?: Record<string, unknown>;
  /** The changed fields' values before and after. */
  changes?: Record<string, { before: unknown; after: unknown }>;
}

export interface AuditEntry {
  id: number;
  at: string;
  user_id: number | null;
  username: string | null;
  action: string;
  target: string | null;
  source: string | null;
  details: Record<string, unknown> | null;
  changes: Record<string, { before: unknown; after: unknown }> | null;
}

export interface AuditQuery {
  /** A user id or a username. */
  actor?: string;
  /** An action, or a prefix ending in `.` (`alarm_rule.`). */
  action?: string;
  from?: Date;
  to?: Date;
  /** The last id of the previous page: newer entries come first. */
  before?: number;
  limit: number;
}

/** Port: the append-only trail. Where the request came from is added by the store. */
export interface AuditTrail {
  record(entry: AuditRecord): Promise<void>;
  list(tenantId: number, query: AuditQuery): Promise<AuditEntry[]>;
}

/** The fields of `after` that differ from `before`, with both values. */
export function changedFields(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): Record<string, { before: unknown; after: unknown }> {
  const changes: Record<string, { before: unknown; after: unknown }> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key]))
      changes[key] = { before: before[key] ?? null, after: after[key] ?? null };
  }
  return changes;
}

const READERS = new Set(['owner', 'admin']);

/** Reads the trail: owners and admins only, newest first, a page at a time. */
export class AuditService {
  constructor(private readonly trail: AuditTrail) {}

  async list(caller: { tenantId: number; role: string }, query: AuditQuery) {
    if (!READERS.has(caller.role))
      throw new NotPermitted(
        'insufficient_role',
        'Only owners and admins may read the audit trail',
      );
    const entries = await this.trail.list(caller.tenantId, { ...query, limit: query.limit + 1 });
    const page = entries.slice(0, query.limit);
    const more = entries.length > query.limit;
    return { entries: page, next_cursor: more ? String(page[page.length - 1]?.id) : null };
  }
}
