import { useEffect, useRef, useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import { useApp } from '../context.ts';
import { absoluteTime } from '../format.ts';

const POLL_MS = 1_000;
const DAY_MS = 24 * 3_600_000;

type JobState =
  | { kind: 'idle' }
  | { kind: 'running'; id: number }
  | { kind: 'done'; url: string; expiresAt: string; rows: number }
  | { kind: 'failed'; message: string };

/**
 * Exports every device's last 24 hours as one CSV file: a job (the range can be large), polled
 * until the file is written, then its expiring link.
 */
export function TenantExport() {
  const { api } = useApp();
  const [state, setState] = useState<JobState>({ kind: 'idle' });
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );

  const poll = (id: number) => {
    timer.current = setTimeout(() => {
      api.call('get', '/api/exports/{id}', { params: { id: String(id) } }).then(
        ({ job }) => {
          if (job.status === 'done' && job.url && job.expires_at) {
            setState({
              kind: 'done',
              url: job.url,
              expiresAt: job.expires_at,
              rows: job.rows ?? 0,
            });
          } else if (job.status === 'failed') {
            setState({ kind: 'failed', message: job.error ?? 'The export failed' });
          } else poll(id);
        },
        (failure: unknown) => setState({ kind: 'failed', message: describeError(failure) }),
      );
    }, POLL_MS);
  };

  const start = () => {
    const to = new Date();
    const from = new Date(to.getTime() - DAY_MS);
    api
      .call('post', '/api/exports', {
        body: { from: from.toISOString(), to: to.toISOString(), format: 'csv', source: 'raw' },
      })
      .then(
        ({ job }) => {
          setState({ kind: 'running', id: job.id });
          poll(job.id);
        },
        (failure: unknown) => setState({ kind: 'failed', message: describeError(failure) }),
      );
  };

  return (
    <span class="tenant-export">
      {state.kind === 'done' ? (
        <a class="button button-ghost" href={state.url} data-export-link>
          Download all devices ({state.rows} rows, until {absoluteTime(state.expiresAt)})
        </a>
      ) : (
        <button
          type="button"
          class="button button-ghost"
          disabled={state.kind === 'running'}
          onClick={start}
        >
          {state.kind === 'running' ? 'Exporting all devices…' : 'Export all devices (CSV, 24 h)'}
        </button>
      )}
      {state.kind === 'failed' && <span class="muted small"> {state.message}</span>}
    </span>
  );
}
