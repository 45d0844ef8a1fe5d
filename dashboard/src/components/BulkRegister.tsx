import { useEffect, useState } from 'preact/hooks';
import { ApiError, describeError } from '../api.ts';
import { useApp } from '../context.ts';
import { Notice } from './ui.tsx';

/** What the dashboard tells apart in a file: a JSON array, or else CSV with a header. */
function contentTypeOf(name: string, text: string): string {
  return /\.json$/i.test(name) || text.trimStart().startsWith('[')
    ? 'application/json'
    : 'text/csv';
}

/**
 * Registers a fleet from a file (`POST /api/devices/bulk`): a CSV with the columns
 * device_id, name, type and optionally location, or a JSON array of devices. The
 * credentials come back once, as a CSV file the browser offers to save.
 */
export function BulkRegisterForm({
  onRegistered,
  onCancel,
}: {
  onRegistered: () => void;
  onCancel: () => void;
}) {
  const { api } = useApp();
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [rows, setRows] = useState<ApiError['rows']>([]);
  const [issued, setIssued] = useState<{ count: number; url: string } | null>(null);
  useEffect(() => () => issued && URL.revokeObjectURL(issued.url), [issued]);

  const submit = async (event: Event) => {
    event.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(null);
    setRows([]);
    try {
      const text = await file.text();
      const csv = await api.registerDevicesFromFile(text, contentTypeOf(file.name, text));
      // Records end with CRLF; a certificate inside a field has bare LFs only.
      const count = csv.split('\r\n').filter((line) => line !== '').length - 1;
      setIssued({ count, url: URL.createObjectURL(new Blob([csv], { type: 'text/csv' })) });
    } catch (failure) {
      setError(describeError(failure));
      if (failure instanceof ApiError) setRows(failure.rows);
    } finally {
      setBusy(false);
    }
  };

  if (issued) {
    return (
      <section class="panel" aria-labelledby="bulk-done-title">
        <h2 id="bulk-done-title">{issued.count} devices registered</h2>
        <Notice tone="warning" title="Shown only once">
          Save the credentials now. The platform keeps no readable copy; a lost one means removing
          and registering that device again.
        </Notice>
        <div class="form-actions">
          <a
            class="button button-primary"
            id="bulk-credentials"
            href={issued.url}
            download="device-credentials.csv"
          >
            Download credentials (CSV)
          </a>
          <button type="button" class="button button-ghost" onClick={onRegistered}>
            I have saved them
          </button>
        </div>
      </section>
    );
  }

  return (
    <form class="panel form-grid" onSubmit={submit} aria-labelledby="bulk-title">
      <h2 id="bulk-title">Register devices from a file</h2>
      <p class="muted span-all">
        Up to 10,000 devices: a CSV file whose first line names the columns{' '}
        <code>device_id,name,type,location</code> (location may be empty), or a JSON array of{' '}
        <code>{'{"device_id", "name", "type", "location"}'}</code>. Every row is checked first; if
        one fails, none is registered and each failing row is listed here.
      </p>
      {error && (
        <div class="span-all">
          <Notice tone="error">{error}</Notice>
        </div>
      )}
      {rows.length > 0 && (
        <div class="span-all table-scroll">
          <table class="table" id="bulk-problems">
            <thead>
              <tr>
                <th>Row</th>
                <th>Device ID</th>
                <th>Problem</th>
              </tr>
            </thead>
            <tbody>
              {rows.slice(0, 200).map((problem) => (
                <tr key={problem.row}>
                  <td>{problem.row}</td>
                  <td class="mono">{problem.device_id ?? ''}</td>
                  <td>{problem.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {rows.length > 200 && <p class="hint">and {rows.length - 200} more rows</p>}
        </div>
      )}
      <div class="field span-all">
        <label for="bulk-file">File</label>
        <input
          id="bulk-file"
          type="file"
          accept=".csv,.json,text/csv,application/json"
          required
          onChange={(e) => setFile((e.currentTarget as HTMLInputElement).files?.[0] ?? null)}
        />
      </div>
      <div class="form-actions span-all">
        <button type="submit" class="button button-primary" disabled={busy || !file}>
          {busy ? 'Registering…' : 'Register devices'}
        </button>
        <button type="button" class="button button-ghost" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
