import { useState } from 'preact/hooks';
import { describeError } from '../api.ts';
import { useApp } from '../context.ts';
import { firmwareSnippets } from '../firmware.ts';
import { href } from '../router.ts';
import type { Credentials, Device } from '../types.ts';
import { CopyBlock, Notice } from './ui.tsx';

const DEVICE_ID_PATTERN = '[A-Za-z0-9:_\\-]{1,128}';

export function RegisterDeviceForm({
  onRegistered,
  onCancel,
}: {
  onRegistered: (device: Device, credentials: Credentials) => void;
  onCancel: () => void;
}) {
  const { api } = useApp();
  const [form, setForm] = useState({ device_id: '', name: '', type: 'esp32', location: '' });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const field = (key: keyof typeof form) => ({
    value: form[key],
    onInput: (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value }),
  });

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const location = form.location.trim();
      const result = await api.registerDevice({
        device_id: form.device_id.trim(),
        name: form.name.trim(),
        type: form.type.trim(),
        ...(location ? { location } : {}),
      });
      onRegistered(result.device, result.credentials);
    } catch (failure) {
      setError(describeError(failure));
      setBusy(false);
    }
  };

  return (
    <form class="panel form-grid" onSubmit={submit} aria-labelledby="register-title">
      <h2 id="register-title">Register a device</h2>
      <p class="muted span-all">
        The platform creates the device's own MQTT credential and shows it once, right after this
        step.
      </p>
      {error && (
        <div class="span-all">
          <Notice tone="error">{error}</Notice>
        </div>
      )}
      <div class="field">
        <label for="register-device-id">Device ID</label>
        <input
          id="register-device-id"
          required
          pattern={DEVICE_ID_PATTERN}
          title="1–128 letters, digits, colons, underscores or hyphens"
          autoComplete="off"
          spellcheck={false}
          placeholder="esp32-boiler-01"
          aria-describedby="register-device-id-hint"
          {...field('device_id')}
        />
        <small id="register-device-id-hint" class="hint">
          The device's MQTT client id; unique across the platform.
        </small>
      </div>
      <div class="field">
        <label for="register-name">Name</label>
        <input
          id="register-name"
          required
          maxLength={255}
          placeholder="Boiler room"
          {...field('name')}
        />
      </div>
      <div class="field">
        <label for="register-type">Type</label>
        <input id="register-type" required maxLength={100} list="device-types" {...field('type')} />
        <datalist id="device-types">
          <option value="esp32" />
          <option value="gateway" />
          <option value="sensor" />
          <option value="virtual" />
        </datalist>
      </div>
      <div class="field">
        <label for="register-location">
          Location <span class="muted">(optional)</span>
        </label>
        <input
          id="register-location"
          maxLength={255}
          placeholder="Plant 2, line A"
          {...field('location')}
        />
      </div>
      <div class="form-actions span-all">
        <button type="submit" class="button button-primary" disabled={busy}>
          {busy ? 'Registering…' : 'Register device'}
        </button>
        <button type="button" class="button button-ghost" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function CredentialsPanel({
  device,
  credentials,
  onDone,
}: {
  device: Device;
  credentials: Credentials;
  onDone: () => void;
}) {
  const { config } = useApp();
  const snippets = firmwareSnippets(device.device_id, credentials, config.mqttUrl);
  return (
    <section class="panel credentials" aria-labelledby="credentials-title">
      <h2 id="credentials-title">
        Credential for <span class="mono">{device.device_id}</span>
      </h2>
      <Notice tone="warning" title="Shown only once">
        Copy it now. The platform keeps no readable copy; if it is lost, remove and register the
        device again to get a new one.
      </Notice>
      <dl class="cred-list">
        <dt>Client ID</dt>
        <dd class="mono" id="cred-client-id">
          {credentials.client_id}
        </dd>
        {credentials.username !== undefined && (
          <>
            <dt>Username</dt>
            <dd class="mono" id="cred-username">
              {credentials.username}
            </dd>
          </>
        )}
        {credentials.password !== undefined && (
          <>
            <dt>Password</dt>
            <dd class="mono" id="cred-password">
              {credentials.password}
            </dd>
          </>
        )}
        <dt>Broker</dt>
        <dd class="mono" id="cred-broker">
          {snippets.brokerUrl}
        </dd>
        {credentials.certificate_id && (
          <>
            <dt>Certificate</dt>
            <dd class="mono">{credentials.certificate_id}</dd>
          </>
        )}
      </dl>
      <CopyBlock
        id="snippet-serial"
        label="ESP32 serial console (115200 baud)"
        text={snippets.serial}
      />
      <p class="hint">
        Also set <code>wifi_ssid</code> and <code>wifi_pass</code> if the board is new.
        {snippets.certificate && (
          <>
            {' '}
            For TLS set <code>ca_cert</code> to Amazon Root CA 1 the same way (paste the PEM after{' '}
            <code>set ca_cert</code>).
          </>
        )}
      </p>
      {snippets.cli && (
        <CopyBlock
          id="snippet-cli"
          label="Virtual device (from the repository root)"
          text={snippets.cli}
        />
      )}
      <div class="form-actions">
        <button type="button" class="button button-primary" onClick={onDone}>
          I have saved it
        </button>
        <a class="button button-ghost" href={href({ name: 'device', id: device.id })}>
          Open device
        </a>
      </div>
    </section>
  );
}
