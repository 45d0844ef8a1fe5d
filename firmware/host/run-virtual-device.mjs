#!/usr/bin/env node
// Launcher behind `npm run device -- --device-id ...`: (re)builds the virtual device
// when a source is newer than the binary, then runs it with the given arguments, passing
// signals through so Ctrl-C and SIGTERM stop it cleanly (it announces "offline").
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const firmwareDir = dirname(dirname(fileURLToPath(import.meta.url)));
const binary = join(firmwareDir, 'build', 'virtual-device');

function newestSourceMtime() {
  let newest = statSync(join(firmwareDir, 'Makefile')).mtimeMs;
  for (const dir of ['core', 'host']) {
    for (const name of readdirSync(join(firmwareDir, dir))) {
      if (/\.(cpp|hpp|h)$/.test(name)) {
        newest = Math.max(newest, statSync(join(firmwareDir, dir, name)).mtimeMs);
      }
    }
  }
  return newest;
}

if (!existsSync(binary) || statSync(binary).mtimeMs < newestSourceMtime()) {
  // Build output goes to stderr: stdout is reserved for the device's JSON event lines.
  const build = spawnSync('make', ['-C', firmwareDir, 'virtual-device'], {
    stdio: ['ignore', process.stderr, process.stderr],
  });
  if (build.error || build.status !== 0) {
    process.stderr.write(
      `virtual-device build failed${build.error ? `: ${build.error.message}` : ''}. ` +
        'It needs g++, make and libmosquitto-dev (apt-get install -y g++ make libmosquitto-dev).\n',
    );
    process.exit(build.status || 1);
  }
}

const child = spawn(binary, process.argv.slice(2), {
  stdio: 'inherit',
  env: { ...process.env, EASYSMART_PARENT_PID: String(process.pid) },
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal));
}
child.on('error', (err) => {
  process.stderr.write(`cannot start ${binary}: ${err.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
