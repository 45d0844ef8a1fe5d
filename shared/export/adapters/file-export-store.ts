import { createHmac, timingSafeEqual } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ExportFileStore } from '../domain/export.ts';

const SAFE_KEY = /^[0-9]{1,10}\/[0-9a-f-]{36}\.(csv|jsonl)$/;

function signature(secret: string, key: string, expires: number): string {
  return createHmac('sha256', secret).update(`${key}\n${expires}`).digest('hex');
}

/** True when the link for `key` was signed with `secret` and has not expired. */
export function exportLinkValid(
  secret: string,
  key: string,
  expires: number,
  given: string,
  nowMs: number,
): boolean {
  if (!SAFE_KEY.test(key) || !Number.isSafeInteger(expires) || expires * 1000 < nowMs) return false;
  const expected = Buffer.from(signature(secret, key, expires), 'hex');
  const actual = Buffer.from(given, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/**
 * Exports in a folder, the local stand-in for the S3 bucket: written through a stream (no
 * whole file in memory), renamed into place when complete, served by the local stack's
 * export endpoint under links signed like S3's presigned URLs.
 */
export class FileExportStore implements ExportFileStore {
  constructor(
    private readonly dir: string,
    /** Where the local stack serves the folder, and the key its links are signed with. */
    private readonly served: () => { publicUrl: string; linkSecret: string },
    private readonly now: () => number = Date.now,
  ) {}

  async write(key: string, body: AsyncIterable<string>): Promise<{ bytes: number }> {
    if (!SAFE_KEY.test(key)) throw new Error(`invalid export key ${key}`);
    const file = path.join(this.dir, key);
    await mkdir(path.dirname(file), { recursive: true });
    const output = createWriteStream(`${file}.partial`);
    try {
      await pipeline(Readable.from(body, { objectMode: false }), output);
    } catch (error) {
      await rm(`${file}.partial`, { force: true });
      throw error;
    }
    await rename(`${file}.partial`, file);
    return { bytes: output.bytesWritten };
  }

  async link(key: string, ttlSeconds: number): Promise<{ url: string; expiresAt: Date }> {
    const { publicUrl, linkSecret } = this.served();
    const expires = Math.floor(this.now() / 1000) + ttlSeconds;
    const url = new URL(`/exports/${key}`, publicUrl);
    url.searchParams.set('expires', String(expires));
    url.searchParams.set('signature', signature(linkSecret, key, expires));
    return { url: url.toString(), expiresAt: new Date(expires * 1000) };
  }
}
