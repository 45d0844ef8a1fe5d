import { createLocalJWKSet, importJWK, type JWK, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import { unauthorized } from '../http/errors.ts';

export type Role = 'owner' | 'admin' | 'viewer';

/** Who is calling, as proven by a verified access token. */
export interface Caller {
  userId: number;
  tenantId: number;
  role: Role;
  /** The user's token version when the token was issued; a session is over once it moved. */
  tokenVersion: number;
}

interface AccessTokenClaims extends JWTPayload {
  tid: number;
  role: Role;
  ver: number;
}

const ALGORITHM = 'ES256';

export interface TokenSettings {
  issuer: string;
  audience: string;
  ttlSeconds: number;
  /** Private JWK (JSON text) with `kid`; its public half is what the JWKS publishes. */
  privateJwk: string;
}

/** Issues and verifies access tokens with one asymmetric key; the algorithm is pinned. */
export class AccessTokens {
  readonly #settings: TokenSettings;
  readonly #privateJwk: JWK;
  readonly #publicJwk: JWK;
  readonly #keySet: ReturnType<typeof createLocalJWKSet>;
  #privateKey: Promise<CryptoKey | Uint8Array> | undefined;

  constructor(settings: TokenSettings) {
    this.#settings = settings;
    this.#privateJwk = JSON.parse(settings.privateJwk) as JWK;
    if (!this.#privateJwk.kid || !this.#privateJwk.d || this.#privateJwk.crv !== 'P-256') {
      throw new Error('JWT_PRIVATE_JWK must be a P-256 private JWK with a kid');
    }
    const { d: _private, ...publicPart } = this.#privateJwk;
    this.#publicJwk = { ...publicPart, alg: ALGORITHM, use: 'sig' };
    this.#keySet = createLocalJWKSet({ keys: [this.#publicJwk] });
  }

  get ttlSeconds(): number {
    return this.#settings.ttlSeconds;
  }

  jwks(): { keys: JWK[] } {
    return { keys: [this.#publicJwk] };
  }

  async issue(caller: Caller): Promise<string> {
    this.#privateKey ??= importJWK(this.#privateJwk, ALGORITHM);
    return new SignJWT({ tid: caller.tenantId, role: caller.role, ver: caller.tokenVersion })
      .setProtectedHeader({ alg: ALGORITHM, kid: this.#privateJwk.kid, typ: 'JWT' })
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
      throw unauthorized('Invalid or expired token', error);
    }
    const userId = Number(claims.sub);
    const role = claims.role;
    if (
      !Number.isSafeInteger(userId) ||
      !Number.isSafeInteger(claims.tid) ||
      !Number.isSafeInteger(claims.ver) ||
      !['owner', 'admin', 'viewer'].includes(role)
    ) {
      throw unauthorized('Invalid or expired token');
    }
    return { userId, tenantId: claims.tid, role, tokenVersion: claims.ver };
  }
}
