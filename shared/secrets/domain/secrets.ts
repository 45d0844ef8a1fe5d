/**
 * Credentials kept out of the functions' configuration: the environment names a secret, the
 * function reads its value once per process (a Lambda cold start) through a SecretStore.
 * On AWS that is Secrets Manager; locally and in Docker, files in the data directory.
 */
export interface SecretStore {
  /** The secret's whole value (a string; often a JSON object). */
  read(name: string): Promise<string>;
}

export class SecretNotFoundError extends Error {
  override readonly name = 'SecretNotFoundError';
}

/**
 * Reads each secret once per process and keeps it. Concurrent first reads share one request;
 * a failed read is not kept, so the next use tries again.
 */
export class CachedSecretStore implements SecretStore {
  readonly #values = new Map<string, Promise<string>>();

  constructor(private readonly source: SecretStore) {}

  read(name: string): Promise<string> {
    let value = this.#values.get(name);
    if (!value) {
      value = this.source.read(name);
      this.#values.set(name, value);
      value.catch(() => this.#values.delete(name));
    }
    return value;
  }
}

/**
 * One field of a secret: a JSON object's `field` (how RDS and the deploy guide store
 * credentials, e.g. {"username","password"}), or the whole value when it is not JSON (a
 * password file of the local stack).
 */
export async function secretField(
  store: SecretStore,
  name: string,
  field: string,
): Promise<string> {
  const value = await store.read(name);
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return value.trim();
  }
  if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
    const found = (parsed as Record<string, unknown>)[field];
    if (typeof found === 'string') return found;
    throw new SecretNotFoundError(`secret ${name} has no string field "${field}"`);
  }
  return value.trim();
}
