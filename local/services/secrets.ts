import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';

/**
 * A secret generated on first start and kept (mode 0600) so that restarts of the local
 * stack reuse it; `generate` defaults to 24 random bytes in base64url.
 */
export async function readOrCreateSecret(
  file: string,
  generate: () => string | Promise<string> = () => randomBytes(24).toString('base64url'),
): Promise<string> {
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    if (existing) return existing;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = await generate();
  // 'wx' so two processes racing on a first start cannot silently overwrite each other.
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}
