import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
}

function lookUp(name: string): SystemUser | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return { name, uid, gid };
  } catch {
    return undefined;
  }
}

/**
 * The system account a server drops to when started as root; undefined when not root.
 * Root may create it, so a fresh machine needs no step by hand (Debian's packages create
 * theirs the same way); only if that fails does the error name the command.
 */
export function serviceAccountWhenRoot(name: string): SystemUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const existing = lookUp(name);
  if (existing) return existing;
  const create = [
    '--system',
    '--user-group',
    '--no-create-home',
    '--shell',
    '/usr/sbin/nologin',
    name,
  ];
  try {
    execFileSync('useradd', create, { stdio: 'ignore' });
  } catch {
    // Reported below with the command to run.
  }
  const created = lookUp(name);
  if (created) return created;
  throw new Error(
    `running as root needs a '${name}' system user: run 'useradd ${create.join(' ')}'`,
  );
}

/** Fails early, naming the fix, when `user` cannot reach `dir` through its ancestors. */
export function assertTraversable(dir: string, user: SystemUser | undefined): void {
  if (!user) return;
  for (let current = path.dirname(path.resolve(dir)); ; current = path.dirname(current)) {
    const stat = statSync(current);
    const traversable =
      (stat.mode & 0o001) !== 0 ||
      (stat.uid === user.uid && (stat.mode & 0o100) !== 0) ||
      (stat.gid === user.gid && (stat.mode & 0o010) !== 0);
    if (!traversable) {
      throw new Error(
        `the ${user.name} user cannot enter ${current}: run 'chmod o+x ${current}' or use another LOCAL_DATA_DIR`,
      );
    }
    if (current === path.dirname(current)) return;
  }
}
