import { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ExportFileStore } from '../domain/export.ts';

/**
 * Exports in S3: a multipart upload fed by the row stream (5 MB parts, so memory stays
 * flat), fetched through a presigned GET URL that expires.
 */
export class S3ExportStore implements ExportFileStore {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  async write(
    key: string,
    body: AsyncIterable<string>,
    contentType: string,
  ): Promise<{ bytes: number }> {
    let bytes = 0;
    async function* counted() {
      for await (const chunk of body) {
        const buffer = Buffer.from(chunk, 'utf8');
        bytes += buffer.length;
        yield buffer;
      }
    }
    await new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: Readable.from(counted()),
        ContentType: contentType,
        // Served as a download, as the local store serves it: the dashboard opens the link.
        ContentDisposition: `attachment; filename="${key.slice(key.lastIndexOf('/') + 1)}"`,
      },
      queueSize: 2,
      partSize: 5 * 1024 * 1024,
    }).done();
    return { bytes };
  }

  async link(key: string, ttlSeconds: number): Promise<{ url: string; expiresAt: Date }> {
    const url = await getSignedUrl(
      this.client,
      new GetObjectCommand({ Bucket: this.bucket, Key: key }),
      {
        expiresIn: ttlSeconds,
      },
    );
    return { url, expiresAt: new Date(Date.now() + ttlSeconds * 1000) };
  }
}
