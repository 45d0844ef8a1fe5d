import { createReadStream } from 'node:fs';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { exportLinkValid } from '../shared/export/adapters/file-export-store.ts';

/**
 * The local stack's mail server: a real SMTP server (the `smtp-server` package) that accepts
 * every message and keeps it as an .eml file in `<data>/mailbox`, the developer's inbox.
 */
export async function startMailbox(options: { dir: string; port?: number }) {
  await mkdir(options.dir, { recursive: true });
  let received = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    banner: 'EasySmart local mailbox',
    size: 10 * 1024 * 1024,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received += 1;
        const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${session.id}-${received}.eml`;
        // Written under a hidden name, then renamed: a reader of the mailbox never sees half a message.
        const partial = path.join(options.dir, `.${name}.partial`);
        writeFile(partial, Buffer.concat(chunks))
          .then(() => rename(partial, path.join(options.dir, name)))
          .then(
            () => callback(),
            (error: Error) => callback(error),
          );
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    dir: options.dir,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * The local stand-in for S3's presigned GET URLs: serves `<dir>/<key>` for a link whose
 * signature and expiry check out, streamed (an export can be gigabytes).
 */
export async function startExportFiles(options: {
  dir: string;
  linkSecret: string;
  port?: number;
}) {
  await mkdir(options.dir, { recursive: true });
  const server: Server = createHttpServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://local');
    const key = decodeURIComponent(url.pathname.replace(/^\/exports\//, ''));
    const expires = Number(url.searchParams.get('expires'));
    const signature = url.searchParams.get('signature') ?? '';
    if (
      request.method !== 'GET' ||
      !url.pathname.startsWith('/exports/') ||
      !exportLinkValid(options.linkSecret, key, expires, signature, Date.now())
    ) {
      response.writeHead(403, { 'content-type': 'text/plain' }).end('link invalid or expired\n');
      return;
    }
    const file = path.join(options.dir, key);
    try {
      const info = await stat(file);
      response.writeHead(200, {
        'content-type': key.endsWith('.csv') ? 'text/csv; charset=utf-8' : 'application/x-ndjson',
        'content-length': String(info.size),
        'content-disposition': `attachment; filename="${path.basename(key)}"`,
        'access-control-allow-origin': '*',
      });
      createReadStream(file).pipe(response);
    } catch {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('no such export\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
