import { useCallback, useEffect, useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import { useApp } from '../context.ts';
import { absoluteTime } from '../format.ts';
import type { AuditEntry } from '../types.ts';
import { EmptyState, ErrorPanel, Loading } from './ui.tsx';

/** The audit trail (owners and admins): who did what, when, from where, newest first. */
export function ActivityPage() {
  const { api } = useApp();
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(
    (after?: string) => {
      api.call('get', '/api/audit', { query: after ? { cursor: after } : {} }).then(
        (page) => {
          setError(null);
          setEntries((previous) => (after ? [...(previous ?? []), ...page.entries] : page.entries));
          setCursor(page.next_cursor);
        },
        (failure: unknown) => setError(describeError(failure)),
      );
    },
    [api],
  );
  useEffect(() => load(), [load]);

  return (
    <>
      <div class="page-head">
        <div>
          <h1>Activity</h1>
          <p class="muted">Every change people made, newest first.</p>
        </div>
      </div>
      {error && <ErrorPanel message={error} onRetry={() => load()} />}
      {!entries && !error && <Loading label="Loading activity…" />}
      {entries && entries.length === 0 && <EmptyState title="Nothing yet" />}
      {entries && entries.length > 0 && (
        <table class="table activity" aria-label="Activity">
          <thead>
            <tr>
              <th>When</th>
              <th>Who</th>
              <th>What</th>
              <th>On</th>
              <th>From</th>
              <th>Changes</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((entry) => (
              <tr key={entry.id}>
                <td class="mono">{absoluteTime(entry.at)}</td>
                <td>
                  {entry.username ??
                    (entry.user_id === null ? 'operator' : `user ${entry.user_id}`)}
                </td>
                <td class="mono">{entry.action}</td>
                <td class="mono">{entry.target}</td>
                <td class="mono">{entry.source ?? ''}</td>
                <td class="small">
                  {Object.entries(entry.changes ?? {}).map(([field, change]) => (
                    <div key={field}>
                      {field}: <span class="mono">{JSON.stringify(change.before)}</span> →{' '}
                      <span class="mono">{JSON.stringify(change.after)}</span>
                    </div>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && (
        <button type="button" class="button" onClick={() => load(cursor)}>
          Load older
        </button>
      )}
    </>
  );
}
