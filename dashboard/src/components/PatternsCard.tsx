import { useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import { useApp, useInterval } from '../context.ts';
import { absoluteTime, formatValue, relativeTime } from '../format.ts';
import {
  type CurrentPattern,
  discoverPatterns,
  labelPattern,
  type Pattern,
  type PatternJob,
  patternColour,
  patternJob,
  patternName,
} from '../patterns.ts';
import { Notice } from './ui.tsx';

export type PatternsState =
  | { kind: 'loading' }
  | { kind: 'hidden' }
  | { kind: 'upgrade'; message: string }
  | { kind: 'shown'; patterns: Pattern[]; current: CurrentPattern | null };

/**
 * Pattern recognition: the device's operating modes found in its history, the one it is in
 * now (or a warning when it is in none seen before), and their names. Owners and admins start
 * a discovery and name the modes; the charts show the modes as bands.
 */
export function PatternsCard({
  deviceId,
  state,
  canWrite,
  now,
  onChanged,
}: {
  deviceId: number;
  state: PatternsState;
  canWrite: boolean;
  now: number;
  onChanged: () => void;
}) {
  const { api } = useApp();
  const [job, setJob] = useState<PatternJob | null>(null);
  const [error, setError] = useState<string | null>(null);
  const running = job !== null && (job.status === 'pending' || job.status === 'running');
  // A discovery runs as a job; its outcome is polled until it is done or failed.
  useInterval(
    () => {
      if (!job) return;
      void patternJob(api, deviceId, job.job_id)
        .then(({ job: next }) => {
          setJob(next);
          if (next.status === 'done') onChanged();
        })
        .catch((failure) => setError(describeError(failure)));
    },
    2_000,
    running,
  );
  if (state.kind === 'loading' || state.kind === 'hidden') return null;
  if (state.kind === 'upgrade') {
    return (
      <section aria-labelledby="patterns-title" class="section">
        <h2 id="patterns-title">Operating modes</h2>
        <Notice tone="info" title="Pattern recognition is not in your plan">
          {state.message}
        </Notice>
      </section>
    );
  }
  const { patterns, current } = state;
  const discover = async () => {
    setError(null);
    try {
      const { job: started } = await discoverPatterns(api, deviceId);
      setJob(started);
      if (started.status === 'done') onChanged();
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  return (
    <section aria-labelledby="patterns-title" class="section patterns-card">
      <div class="section-head">
        <h2 id="patterns-title">Operating modes</h2>
        <CurrentBadge patterns={patterns} current={current} />
      </div>
      {patterns.length === 0 ? (
        <p class="muted" data-no-patterns>
          No modes discovered yet. A discovery learns them from the last 7 days of the device's
          numeric sensors.
        </p>
      ) : (
        <div class="table-scroll">
          <table class="table patterns-table">
            <thead>
              <tr>
                <th scope="col">Mode</th>
                <th scope="col">Seen</th>
                <th scope="col">Share</th>
                <th scope="col">Levels (mean ± sd)</th>
                <th scope="col">Longest stretch</th>
              </tr>
            </thead>
            <tbody>
              {patterns.map((pattern) => (
                <tr key={pattern.pattern_id} data-pattern-id={pattern.pattern_id}>
                  <td>
                    <span
                      class="swatch"
                      aria-hidden="true"
                      style={{ background: patternColour(patterns, pattern.pattern_id) }}
                    />
                    {canWrite ? (
                      <LabelForm
                        deviceId={deviceId}
                        pattern={pattern}
                        name={patternName(patterns, pattern.pattern_id)}
                        onSaved={onChanged}
                      />
                    ) : (
                      patternName(patterns, pattern.pattern_id)
                    )}
                  </td>
                  <td>
                    {pattern.occurrences} {pattern.occurrences === 1 ? 'time' : 'times'}
                  </td>
                  <td>{Math.round(pattern.share * 100)}%</td>
                  <td class="small">
                    {pattern.profile
                      .map((e) => `${e.entity_id} ${formatValue(e.mean)} ± ${formatValue(e.std)}`)
                      .join(', ')}
                  </td>
                  <td class="small" title={absoluteTime(pattern.example.from)}>
                    {relativeTime(pattern.example.from, now)}, for{' '}
                    {duration(Date.parse(pattern.example.to) - Date.parse(pattern.example.from))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {canWrite && (
        <div class="inline-form">
          <button type="button" onClick={() => void discover()} disabled={running}>
            {running ? 'Discovering…' : patterns.length === 0 ? 'Discover modes' : 'Discover again'}
          </button>
          {job?.status === 'failed' && (
            <span class="muted" data-job-failed>
              Discovery failed: {job.error?.message}
            </span>
          )}
          {job?.status === 'done' && job.result && (
            <span class="muted" data-job-done>
              Found {job.result.patterns} modes in {job.result.windows} windows of{' '}
              {duration(job.result.window_seconds * 1000)}. Names carry over to the modes that
              match.
              {job.result.left_out.length > 0 && (
                <span data-left-out>
                  {' '}
                  Left out as too sparse for the windows:{' '}
                  {job.result.left_out
                    .map((e) => `${e.entity_id} (${e.readings} readings)`)
                    .join(', ')}
                  .
                </span>
              )}
            </span>
          )}
        </div>
      )}
      {error && (
        <Notice tone="error" title="Not done">
          {error}
        </Notice>
      )}
    </section>
  );
}

function CurrentBadge({
  patterns,
  current,
}: {
  patterns: Pattern[];
  current: CurrentPattern | null;
}) {
  if (patterns.length === 0) return null;
  if (!current) {
    return (
      <span class="badge" data-current-pattern="none">
        Now: no recent readings
      </span>
    );
  }
  if (current.novel) {
    return (
      <span
        class="badge badge-pattern-novel"
        data-current-pattern="novel"
        title="The latest readings are like none of the modes discovered in the history"
      >
        Now: a mode never seen before
      </span>
    );
  }
  return (
    <span class="badge" data-current-pattern={current.pattern_id ?? ''}>
      <span
        class="swatch"
        aria-hidden="true"
        style={{ background: patternColour(patterns, current.pattern_id) }}
      />
      Now: {patternName(patterns, current.pattern_id)}
    </span>
  );
}

function LabelForm({
  deviceId,
  pattern,
  name,
  onSaved,
}: {
  deviceId: number;
  pattern: Pattern;
  name: string;
  onSaved: () => void;
}) {
  const { api } = useApp();
  const [value, setValue] = useState(pattern.label ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const save = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await labelPattern(
        api,
        deviceId,
        pattern.pattern_id,
        value.trim() === '' ? null : value.trim(),
      );
      onSaved();
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="inline-form pattern-label" onSubmit={save}>
      <input
        aria-label={`Name of ${name}`}
        placeholder={name}
        maxLength={100}
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
      />
      <button type="submit" class="button-ghost" disabled={busy || value === (pattern.label ?? '')}>
        Save
      </button>
      {error && <span class="error-text">{error}</span>}
    </form>
  );
}

function duration(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1) return `${Math.round(ms / 1000)} s`;
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  return hours < 48 ? `${hours} h` : `${Math.round(hours / 24)} days`;
}
