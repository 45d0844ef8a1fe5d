import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkLayers } from '../../infra/check-layers.ts';

let root: string | undefined;

/** A `shared/` tree made of the given files (path -> source). */
function tree(files: Record<string, string>): string {
  root = mkdtempSync(join(tmpdir(), 'layers-'));
  for (const [path, source] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), source);
  }
  return root;
}

afterEach(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
});

const messages = (shared: string) => checkLayers(shared).violations.map((v) => v.message);

describe('check:layers', () => {
  it('refuses driver, client, HTTP and adapter imports in a domain file, and only there', () => {
    const shared = tree({
      'devices/domain/service.ts': [
        "import type pg from 'pg';",
        "import { IoTClient } from '@aws-sdk/client-iot';",
        "import mqtt from 'mqtt';",
        "import { HttpError } from '../../http/errors.ts';",
        "import { PostgresStore } from '../adapters/postgres-store.ts';",
        "import { NotFound } from '../../domain-errors.ts';",
        "import type { Port } from './ports.ts';",
      ].join('\n'),
      'devices/domain/ports.ts': 'export interface Port {}',
      'devices/adapters/postgres-store.ts':
        "import type pg from 'pg';\nexport class PostgresStore {}",
      'http/errors.ts': 'export class HttpError extends Error {}',
      'domain-errors.ts': 'export class NotFound extends Error {}',
    });
    const found = messages(shared);
    expect(found).toHaveLength(5);
    for (const banned of [
      'pg',
      '@aws-sdk/client-iot',
      'mqtt',
      'http/errors.ts',
      'adapters/postgres-store.ts',
    ]) {
      expect(
        found.some((message) => message.includes(`imports ${banned}`) || message.includes(banned)),
      ).toBe(true);
    }
    expect(found.every((message) => message.startsWith('shared/devices/domain/service.ts'))).toBe(
      true,
    );
  });

  it('names a circle between contexts, through any number of them', () => {
    const shared = tree({
      'a/domain/x.ts': "import { y } from '../../b/domain/y.ts';\nexport const x = y;",
      'b/domain/y.ts': "import { z } from '../../c/domain/z.ts';\nexport const y = z;",
      'c/domain/z.ts': "import { x } from '../../a/domain/x.ts';\nexport const z = x;",
      'd/domain/w.ts': "import { x } from '../../a/domain/x.ts';\nexport const w = x;",
    });
    const { violations } = checkLayers(shared);
    expect(violations.map((v) => v.kind)).toEqual(['circle']);
    expect(violations[0]?.message).toContain('a -> b -> c -> a');
  });

  it('does not count composition roots as their folder, and refuses any other file importing one', () => {
    const shared = tree({
      'a/composition.ts': "import { B } from '../b/adapters/b.ts';\nexport const wired = B;",
      'b/adapters/b.ts': "import type { Port } from '../../a/domain/port.ts';\nexport class B {}",
      'a/domain/port.ts': 'export interface Port {}',
      'a/domain/service.ts': "import { wired } from '../composition.ts';\nexport const s = wired;",
    });
    const { violations } = checkLayers(shared);
    expect(violations.map((v) => v.kind)).toEqual(['composition-import']);
  });

  it("passes on the project's own shared/", () => {
    expect(messages(join(import.meta.dirname, '../../shared'))).toEqual([]);
  });
});
