import { createLocalJWKSet, importJWK, type JWK, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import { Unauthenticated } from '../../domain-errors.ts';
import type { Caller, Role } from '../domain/caller.ts';
import type { AccessTokenIssuer } from '../domain/credentials.ts';
import type { TokenVerifier } from '../domain/sessions.ts';

interface AccessTokenClaims extends JWTPayload {
  tid: number;
  role: Role;
  ver: number;
}

const ALGORITHM = 'ES256';

export type TokenSettings = {
  issuer: string;
  audience: string;
  ttlSeconds: number;
} & (
  | {
      /** Private JWK (JSON text) with `kid`: signs; its public half is what the JWKS publishes. */
      privateJwk: string;
    }
  | {
      /** The public JWKS (JSON text) alone: verifies, never signs (every function but auth). */
      publicJwks: string;
    }
);

/** Issues and verifies access tokens with one asymmetric key; the algorithm is pinned. */
export class AccessTokens implements AccessTokenIssuer, TokenVerifier {
  readonly #settings: TokenSettings;
  readonly #privateJwk: JWK | undefined;
  readonly #publicJwks: JWK[];
  readonly #keySet: ReturnType<typeof createLocalJWKSet>;
  #privateKey: Promise<CryptoKey | Uint8Array> | undefined;

  constructor(settings: TokenSettings) {
    this.#settings = settings;
    if ('privateJwk' in settings) {
      this.#privateJwk = JSON.parse(settings.privateJwk) as JWK;
      if (!this.#privateJwk.kid || !this.#privateJwk.d || this.#privateJwk.crv !== 'P-256') {
        throw new Error('JWT_PRIVATE_JWK must be a P-256 private JWK with a kid');
      }
      const { d: _private, ...publicPart } = this.#privateJwk;
      this.#publicJwks = [{ ...publicPart, alg: ALGORITHM, use: 'sig' }];
    } else {
      this.#publicJwks = parsePublicJwks(settings.publicJwks);
    }
    this.#keySet = createLocalJWKSet({ keys: this.#publicJwks });
  }

  get ttlSeconds(): number {
    return this.#settings.ttlSeconds;
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.#publicJwks };
  }

  async issue(caller: Caller): Promise<string> {
    if (!this.#privateJwk)
      throw new Error('this function only verifies tokens: no JWT_PRIVATE_JWK');
    this.#privateKey ??= importJWK(this.#privateJwk, ALGORITHM);
    return new SignJWT({ tid: caller.tenantId, role: caller.role, ver: caller.tokenVersion })
      .setProtectedHeader({ alg: ALGORITHM, kid: this.#privateJwk.kid as string, typ: 'JWT' })
      .setSubject(String(caller.userId))
      .setIssuer(this.#settings.issuer)
      .setAudience(this.#settings.audience)
      .setIssuedAt()
      .setExpirationTime(`${this.#settings.ttlSeconds}s`)
      .sign(await this.#privateKey);
  }

  /** Verifies a bearer token; every failure is the same 401 to the client. */
  async verify(token: string): Promise<Caller> {
    let claims: AccessTokenClaims;
    try {
      const result = await jwtVerify<AccessTokenClaims>(token, this.#keySet, {
        algorithms: [ALGORITHM],
        issuer: this.#settings.issuer,
        audience: this.#settings.audience,
        requiredClaims: ['exp', 'iat', 'sub', 'tid', 'role', 'ver'],
      });
      claims = result.payload;
    } catch (error) {
      throw new Unauthenticated('unauthorized', 'Invalid or expired token', { cause: error });
    }
    const userId = Number(claims.sub);
    const role = claims.role;
    if (
      !Number.isSafeInteger(userId) ||
      !Number.isSafeInteger(claims.tid) ||
      !Number.isSafeInteger(claims.ver) ||
      !['owner', 'admin', 'viewer'].includes(role)
    ) {
      throw new Unauthenticated('unauthorized', 'Invalid or expired token');
    }
    return { userId, tenantId: claims.tid, role, tokenVersion: claims.ver };
  }
}

/** The verifying functions' keys: a JWKS of public P-256 keys, each with a kid, no private part. */
function parsePublicJwks(text: string): JWK[] {
  let keys: unknown;
  try {
    keys = (JSON.parse(text) as { keys?: unknown }).keys;
  } catch {
    keys = undefined;
  }
  const valid =
    Array.isArray(keys) &&
    keys.length > 0 &&
    keys.every(
      (key: JWK) =>
        key &&
        typeof key === 'object' &&
        key.kty === 'EC' &&
        key.crv === 'P-256' &&
        key.kid &&
        !key.d,
    );
  if (!valid) {
    throw new Error('JWT_PUBLIC_JWKS must be {"keys":[...]} of public P-256 JWKs with a kid');
  }
  return (keys as JWK[]).map((key) => ({ ...key, alg: ALGORITHM, use: 'sig' }));
}
