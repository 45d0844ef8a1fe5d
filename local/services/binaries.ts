import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export type LocalBinary = 'mosquitto' | 'mosquitto_ctrl' | 'influxd';

/** The Debian/Ubuntu package that ships each binary. */
const debianPackageOf: Record<LocalBinary, string> = {
  mosquitto: 'mosquitto',
  mosquitto_ctrl: 'mosquitto-clients',
  influxd: 'influxdb',
};

// Debian puts mosquitto in /usr/sbin, which a non-root PATH often lacks.
const extraSearchDirs = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

/** Absolute path of an executable found on PATH or in the sbin directories, if any. */
export function findBinary(name: string): string | undefined {
  // The shell resolves PATH, so the search matches what a user typing the name would run.
  const lookup = spawnSync('sh', ['-c', 'command -v "$0"', name], { encoding: 'utf8' });
  const onPath = lookup.status === 0 ? lookup.stdout.trim() : '';
  if (onPath.startsWith('/')) return onPath;
  for (const dir of extraSearchDirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function isDebianLike(): boolean {
  try {
    const osRelease = readFileSync('/etc/os-release', 'utf8');
    return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(osRelease);
  } catch {
    return false;
  }
}

function aptGet(args: string[]): boolean {
  const result = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  return result.status === 0;
}

/** What building the virtual device (the demo's devices) needs, and the package of each. */
const demoToolchain: ReadonlyArray<{ package: string; present: () => boolean }> = [
  { package: 'g++', present: () => findBinary('g++') !== undefined },
  { package: 'make', present: () => findBinary('make') !== undefined },
  {
    package: 'libmosquitto-dev',
    present: () => ['/usr/include/mosquitto.h', '/usr/local/include/mosquitto.h'].some(existsSync),
  },
];

/** The Debian/Ubuntu packages the demo's virtual devices still need to be built. */
export function missingDemoPackages(): string[] {
  return demoToolchain.filter((tool) => !tool.present()).map((tool) => tool.package);
}

/**
 * Makes sure the servers the local stack runs are installed, installing them with apt when
 * running as root on Debian/Ubuntu, together with `alsoInstall` (packages wanted but not
 * required, such as the demo's compiler), in one apt-get run. Throws a one-line error naming
 * what to install when a server is still missing, because a stack without its broker or
 * time-series database is not the platform. Returns the absolute path of each binary.
 */
export function ensureBinaries(
  names: readonly LocalBinary[],
  log: (message: string) => void = () => {},
  alsoInstall: readonly string[] = [],
): Record<LocalBinary, string> {
  const missing = names.filter((name) => findBinary(name) === undefined);
  const packages = [...new Set([...missing.map((name) => debianPackageOf[name]), ...alsoInstall])];
  if (packages.length > 0 && process.getuid?.() === 0 && isDebianLike()) {
    log(`installing ${packages.join(', ')} with apt-get`);
    const install = (list: string[]) =>
      aptGet(['install', '-y', '--no-install-recommends', ...list]);
    if (!install(packages)) {
      aptGet(['update']);
      // A wanted package that cannot be installed must not keep the servers from it.
      if (!install(packages) && missing.length > 0) {
        install([...new Set(missing.map((name) => debianPackageOf[name]))]);
      }
    }
  }
  const stillMissing = names.filter((name) => findBinary(name) === undefined);
  const first = stillMissing[0];
  if (first !== undefined) {
    const stillMissingPackages = [...new Set(stillMissing.map((name) => debianPackageOf[name]))];
    throw new Error(
      `${first} is not installed: run 'sudo apt-get install -y ${stillMissingPackages.join(' ')}'`,
    );
  }
  const found = {} as Record<LocalBinary, string>;
  for (const name of names) {
    found[name] = findBinary(name) as string;
  }
  return found;
}
