import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';

export const JWT_ALGORITHM = 'ES256';

/** A new ES256 private key as a JWK JSON string, with `kid` and `alg`, for JWT_PRIVATE_JWK. */
export async function generateSigningJwk(): Promise<string> {
  const { privateKey } = await generateKeyPair(JWT_ALGORITHM, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return JSON.stringify({ ...jwk, kid: randomUUID(), alg: JWT_ALGORITHM, use: 'sig' });
}
