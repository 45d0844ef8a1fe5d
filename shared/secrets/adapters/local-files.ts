import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SecretNotFoundError, type SecretStore } from '../domain/secrets.ts';

/** The local stack's secrets: one file per secret in its data directory (mode 0600). */
export class LocalFileSecretStore implements SecretStore {
  constructor(private readonly dir: string) {}

  async read(name: string): Promise<string> {
    // A secret is a file directly in the directory, never a path elsewhere.
    if (name !== path.basename(name) || name.startsWith('.')) {
      throw new SecretNotFoundError(`invalid local secret name ${JSON.stringify(name)}`);
    }
    try {
      return await readFile(path.join(this.dir, name), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new SecretNotFoundError(`secret ${name} does not exist in ${this.dir}`, {
          cause: error,
        });
      }
      throw error;
    }
  }
}
