import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** Files whose change means the built dashboard is out of date. */
const SOURCES = ['src', 'index.html', 'vite.config.ts', 'public'];

async function newestMtime(entry: string): Promise<number> {
  const info = await stat(entry).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = info.mtimeMs;
  for (const name of await readdir(entry)) {
    newest = Math.max(newest, await newestMtime(path.join(entry, name)));
  }
  return newest;
}

/** True when `<dashboardDir>/dist` is missing or older than one of its sources. */
export async function dashboardBuildIsStale(dashboardDir: string): Promise<boolean> {
  const built = await stat(path.join(dashboardDir, 'dist', 'index.html')).catch(() => undefined);
  if (!built) return true;
  const sources = await Promise.all(
    SOURCES.map((name) => newestMtime(path.join(dashboardDir, name))),
  );
  return Math.max(...sources) > built.mtimeMs;
}

/**
 * Builds the dashboard into `<dashboardDir>/dist` with Vite when it is missing or stale (well
 * under a second). The build goes to a folder of its own and replaces dist in two renames, so
 * stacks starting side by side never serve a half-written build; Vite's output goes to
 * `logFile`. Resolves with whether it built.
 */
export async function ensureDashboardBuilt(options: {
  repoRoot: string;
  logFile: string;
}): Promise<boolean> {
  const dashboardDir = path.join(options.repoRoot, 'dashboard');
  if (!(await dashboardBuildIsStale(dashboardDir))) return false;
  const suffix = `${process.pid}-${Date.now().toString(36)}`;
  const staging = path.join(dashboardDir, `.dist-build-${suffix}`);
  const vite = path.join(options.repoRoot, 'node_modules', 'vite', 'bin', 'vite.js');
  const log = createWriteStream(options.logFile, { flags: 'a' });
  try {
    const exit = await new Promise<string | undefined>((resolve) => {
      const child = spawn(
        process.execPath,
        [vite, 'build', dashboardDir, '--outDir', staging, '--emptyOutDir', '--logLevel', 'warn'],
        { cwd: options.repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout?.pipe(log, { end: false });
      child.stderr?.pipe(log, { end: false });
      child.once('error', (error) => resolve(error.message));
      child.once('close', (code, signal) =>
        resolve(code === 0 ? undefined : `vite exited with ${signal ?? code}`),
      );
    });
    if (exit) throw new Error(`building the dashboard failed: ${exit} (log: ${options.logFile})`);
    const dist = path.join(dashboardDir, 'dist');
    const previous = path.join(dashboardDir, `.dist-old-${suffix}`);
    await rename(dist, previous).catch(() => {});
    try {
      await rename(staging, dist);
    } catch (error) {
      // Another stack put its build in place between our renames; theirs is as fresh.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
    }
    await rm(previous, { recursive: true, force: true });
    return true;
  } finally {
    await rm(staging, { recursive: true, force: true });
    log.end();
  }
}
