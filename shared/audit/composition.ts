import { databasePool, once } from '../composition.ts';
import { PostgresAuditTrail } from './adapters/postgres-audit-trail.ts';
import { AuditService } from './domain/audit.ts';

export const auditTrail = once(() => new PostgresAuditTrail(databasePool()));
export const auditService = once(() => new AuditService(auditTrail()));
