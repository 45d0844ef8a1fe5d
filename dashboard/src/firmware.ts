import type { Credentials } from './types.ts';

export interface FirmwareSnippets {
  brokerUrl: string;
  /** Lines for the ESP32 serial console (115200 baud), pasted one after another. */
  serial: string;
  /** The virtual device, for trying the platform without hardware. */
  cli: string | null;
  /** Certificate brokers (AWS IoT): the PEM files the device needs. */
  certificate: boolean;
}

const PLACEHOLDER_BROKER = 'mqtts://YOUR-BROKER-HOST:8883';

/** POSIX shell quoting, so a generated password with `$` or quotes pastes safely. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The firmware's console keys are `mqtt_user` and `mqtt_pass` (firmware/core/config.cpp);
 * values run verbatim to the end of the line, so nothing is quoted there.
 */
export function firmwareSnippets(
  deviceId: string,
  credentials: Credentials,
  fallbackBroker: string | null,
): FirmwareSnippets {
  const brokerUrl = credentials.broker_url || fallbackBroker || PLACEHOLDER_BROKER;
  const lines = [`set device_id ${deviceId}`, `set mqtt_url ${brokerUrl}`];
  const certificate = Boolean(credentials.certificate_pem && credentials.private_key);
  if (credentials.username !== undefined) lines.push(`set mqtt_user ${credentials.username}`);
  if (credentials.password !== undefined) lines.push(`set mqtt_pass ${credentials.password}`);
  if (certificate) {
    lines.push('set client_cert', (credentials.certificate_pem ?? '').trim());
    lines.push('set client_key', (credentials.private_key ?? '').trim());
  }
  lines.push('reboot');

  const cli =
    credentials.password !== undefined
      ? [
          'npm run device --',
          `--device-id ${shellQuote(deviceId)}`,
          `--username ${shellQuote(credentials.username ?? deviceId)}`,
          `--password ${shellQuote(credentials.password)}`,
          `--mqtt ${shellQuote(brokerUrl)}`,
        ].join(' ')
      : null;

  return { brokerUrl, serial: lines.join('\n'), cli, certificate };
}
