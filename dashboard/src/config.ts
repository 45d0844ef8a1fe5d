/**
 * Where the platform is, read at runtime from `config.json` next to index.html, so one build
 * serves the local stack and every AWS stage alike.
 */
export interface RuntimeConfig {
  /** HTTP API base, e.g. `https://api.example.com`; empty means the dashboard's own origin. */
  apiUrl: string;
  /** WebSocket API URL, e.g. `wss://ws.example.com/prod`; absent: live updates fall back to polling. */
  wsUrl: string | null;
  /** The broker devices connect to, used in firmware snippets when credentials carry no broker_url. */
  mqttUrl: string | null;
}

export class ConfigError extends Error {}

const trimSlash = (url: string) => url.replace(/\/+$/, '');

function optionalUrl(value: unknown, field: string): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw new ConfigError(`config.json: ${field} must be a string`);
  return trimSlash(value);
}

export function parseConfig(raw: unknown): RuntimeConfig {
  if (typeof raw !== 'object' || raw === null)
    throw new ConfigError('config.json is not an object');
  const record = raw as Record<string, unknown>;
  return {
    apiUrl: optionalUrl(record.apiUrl, 'apiUrl') ?? '',
    wsUrl: optionalUrl(record.wsUrl, 'wsUrl'),
    mqttUrl: optionalUrl(record.mqttUrl, 'mqttUrl'),
  };
}

export async function loadConfig(): Promise<RuntimeConfig> {
  const url = new URL('config.json', document.baseURI);
  let response: Response;
  try {
    response = await fetch(url, { cache: 'no-store' });
  } catch {
    throw new ConfigError(
      `Could not fetch ${url.pathname}; check that the dashboard server is running.`,
    );
  }
  if (!response.ok) {
    throw new ConfigError(
      `${url.pathname} answered ${response.status}; the dashboard server must serve it next to index.html.`,
    );
  }
  try {
    return parseConfig(await response.json());
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`${url.pathname} is not valid JSON.`);
  }
}
