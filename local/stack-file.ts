/**
 * `<data dir>/stack.json`: what a running local stack (`npm start`) tells the operator
 * commands next to it (where its database, broker and Lambda endpoint are). Written once the
 * stack's servers are up, removed when it stops; a file left by a stack that was killed
 * names a process that no longer exists.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface StackFile {
  pid: number;
  apiUrl: string;
  mqttUrl: string;
  dashboardUrl: string;
  databaseAdminUrl: string;
  databaseUrl: string;
  influxUrl: string;
  mqttAdmin: { username: string; password: string };
  mqttPlatform: { username: string; password: string };
  lambdaEndpoint: string;
  websocketUrl: string;
}

/** No local stack answers for a data directory; its message is one line for a terminal. */
export class NoRunningStack extends Error {}

export function stackFilePath(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'stack.json');
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running stack that keeps its data in `dataDir`, or NoRunningStack saying why not. */
export async function readRunningStack(dataDir: string): Promise<StackFile> {
  const file = stackFilePath(dataDir);
  const start = `start it with 'npm start' in this folder (LOCAL_DATA_DIR=${path.resolve(dataDir)})`;
  let stack: Partial<StackFile>;
  try {
    stack = JSON.parse(await readFile(file, 'utf8')) as Partial<StackFile>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NoRunningStack(`no local stack is running (no ${file}): ${start}`);
    }
    throw new NoRunningStack(`cannot read ${file}: ${(error as Error).message}`);
  }
  if (typeof stack.pid !== 'number' || !processAlive(stack.pid)) {
    throw new NoRunningStack(
      `no local stack is running (${file} was left by process ${stack.pid}, which has exited): ${start}`,
    );
  }
  return stack as StackFile;
}
