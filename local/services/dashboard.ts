import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';

export interface StartDashboardOptions {
  port: number;
  /** Where to listen; 127.0.0.1 unless in a container. */
  host?: string;
  /** The dashboard's build output (`dashboard/dist`); a placeholder is served while it is missing. */
  distDir: string;
  apiUrl: string;
  mqttUrl: string;
  /** The WebSocket API (live updates). */
  wsUrl: string;
}

export interface RunningDashboard {
  url: string;
  unexpectedExit(): Promise<string>;
  healthy(): Promise<boolean>;
  stop(): Promise<void>;
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function placeholderPage(apiUrl: string, mqttUrl: string): string {
  const api = escapeHtml(apiUrl);
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>EasySmart (local)</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}code{background:#eee;padding:0 .25rem}</style>
</head>
<body>
<h1>EasySmart local stack</h1>
<p>The dashboard's files are not in <code>dashboard/dist</code> right now (another stack may be replacing them): reload in a moment, or restart <code>npm start</code>, which builds them.</p>
<p>The platform is running:</p>
<ul>
<li>HTTP API: <a href="${api}">${api}</a> (e.g. <a href="${api}/.well-known/jwks.json">${api}/.well-known/jwks.json</a>; sign up with <code>POST ${api}/api/auth/register</code>)</li>
<li>MQTT broker: <code>${escapeHtml(mqttUrl)}</code></li>
</ul>
</body>
</html>
`;
}

async function fileIfExists(file: string): Promise<string | undefined> {
  try {
    return (await stat(file)).isFile() ? file : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Serves the built dashboard (falling back to index.html for client-side routes) and
 * `/config.json` telling it where the API and broker are.
 */
export function startDashboard(options: StartDashboardOptions): Promise<RunningDashboard> {
  const distDir = path.resolve(options.distDir);
  const runtimeConfig = JSON.stringify({
    apiUrl: options.apiUrl,
    mqttUrl: options.mqttUrl,
    wsUrl: options.wsUrl,
  });

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
    if (pathname === '/config.json') {
      response.writeHead(200, {
        'content-type': contentTypes['.json'],
        'cache-control': 'no-store',
      });
      response.end(request.method === 'HEAD' ? undefined : runtimeConfig);
      return;
    }
    const index = await fileIfExists(path.join(distDir, 'index.html'));
    if (!index) {
      response.writeHead(200, {
        'content-type': contentTypes['.html'],
        'cache-control': 'no-store',
      });
      response.end(
        request.method === 'HEAD' ? undefined : placeholderPage(options.apiUrl, options.mqttUrl),
      );
      return;
    }
    const requested = path.resolve(distDir, `.${pathname}`);
    const insideDist = requested === distDir || requested.startsWith(`${distDir}${path.sep}`);
    const file = (insideDist && (await fileIfExists(requested))) || index;
    const type = contentTypes[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
    response.writeHead(200, { 'content-type': type });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    createReadStream(file).pipe(response);
  };

  const server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(400);
      response.end();
    });
  });
  const url = `http://127.0.0.1:${options.port}`;
  let stopping = false;
  const unexpectedExit = new Promise<string>((resolve) => {
    server.on('close', () => {
      if (!stopping) resolve('dashboard server closed');
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve({
        url,
        unexpectedExit: () => unexpectedExit,
        healthy: async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok,
        stop: () =>
          new Promise<void>((done) => {
            stopping = true;
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
