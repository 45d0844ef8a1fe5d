/**
 * The architecture rules a reviewer would otherwise check by eye, for the contexts under
 * `shared/` (each folder is a context; files directly in `shared/` are the shared kernel):
 * - a `domain/` file imports no driver or HTTP code (pg, an InfluxDB, AWS or MQTT client,
 *   `shared/http`, `shared/db`, any `adapters/`);
 * - no two contexts import each other in a circle;
 * - composition roots (`composition.ts`, `*-composition.ts`) are where contexts are wired to
 *   each other's adapters (an adapter of one context implements another's port, so the
 *   wiring necessarily knows both); they are therefore not counted as their folder's
 *   imports, and in exchange no other file in `shared/` may import one.
 * Exits non-zero and names each violation. `npm run check:layers`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Packages a domain file may not import (exact name, or a scope/prefix ending in `/`). */
const FORBIDDEN_PACKAGES = [
  'pg',
  'pg-',
  '@aws-sdk/',
  'aws-lambda',
  'mqtt',
  '@influxdata/',
  'influx',
];

/** Project paths (relative to `shared/`) a domain file may not import. */
const FORBIDDEN_PATHS = [
  /^http\//,
  /^db\//,
  /(^|\/)adapters\//,
  /^timeseries\/influx-client\.ts$/,
  /^iot\//,
];

export interface Violation {
  kind: 'forbidden-import' | 'circle' | 'composition-import';
  message: string;
}

export interface LayerReport {
  violations: Violation[];
  /** context -> the contexts it imports, for the record. */
  contextImports: Map<string, Set<string>>;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : sourceFiles(path);
    return /\.(ts|mts|tsx)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

function isForbiddenPackage(specifier: string): boolean {
  return FORBIDDEN_PACKAGES.some((banned) =>
    banned.endsWith('/') || banned.endsWith('-')
      ? specifier.startsWith(banned)
      : specifier === banned || specifier.startsWith(`${banned}/`),
  );
}

const isCompositionRoot = (path: string) => /(^|\/)([\w-]+-)?composition\.ts$/.test(path);

/** The context a path under `shared/` belongs to: its first folder; top-level files are the kernel. */
function contextOf(pathInShared: string): string | undefined {
  const parts = pathInShared.split('/');
  return parts.length > 1 ? parts[0] : undefined;
}

/** Checks the tree rooted at `sharedDir` (the project's `shared/`). */
export function checkLayers(sharedDir: string): LayerReport {
  const violations: Violation[] = [];
  const contextImports = new Map<string, Set<string>>();
  const evidence = new Map<string, string>();
  for (const file of sourceFiles(sharedDir)) {
    const from = relative(sharedDir, file).split(sep).join('/');
    const fromContext = contextOf(from);
    const inDomain = /(^|\/)domain\//.test(from);
    const imports = ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles;
    for (const { fileName: specifier } of imports) {
      const local = specifier.startsWith('.');
      const target = local
        ? relative(sharedDir, resolve(dirname(file), specifier))
            .split(sep)
            .join('/')
        : undefined;
      if (inDomain) {
        const banned = target
          ? target.startsWith('..')
            ? false
            : FORBIDDEN_PATHS.some((pattern) => pattern.test(target))
          : isForbiddenPackage(specifier);
        if (banned) {
          violations.push({
            kind: 'forbidden-import',
            message: `shared/${from} imports ${specifier}: a domain file imports no driver, client, HTTP or adapter code`,
          });
        }
      }
      if (!target || target.startsWith('..')) continue;
      if (isCompositionRoot(target) && !isCompositionRoot(from)) {
        violations.push({
          kind: 'composition-import',
          message: `shared/${from} imports ${specifier}: only functions, tools and other composition roots use a composition root`,
        });
      }
      if (!fromContext || isCompositionRoot(from)) continue;
      const toContext = contextOf(target);
      if (!toContext || toContext === fromContext) continue;
      const targets = contextImports.get(fromContext) ?? new Set<string>();
      contextImports.set(fromContext, targets);
      targets.add(toContext);
      const edge = `${fromContext}->${toContext}`;
      if (!evidence.has(edge)) evidence.set(edge, `shared/${from} imports ${specifier}`);
    }
  }
  for (const circle of circlesOf(contextImports)) {
    const steps = circle.map((context, i) => {
      const next = circle[(i + 1) % circle.length];
      return evidence.get(`${context}->${next}`);
    });
    violations.push({
      kind: 'circle',
      message: `contexts import each other in a circle: ${[...circle, circle[0]].join(' -> ')} (${steps.join('; ')})`,
    });
  }
  return { violations, contextImports };
}

/**
 * The circles among contexts: the strongly connected groups (Tarjan), and in each the
 * shortest circle through every import between two members, so each edge to break is named.
 */
function circlesOf(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  let next = 0;
  const visit = (node: string) => {
    index.set(node, next);
    low.set(node, next);
    next += 1;
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node) as number, low.get(to) as number));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node) as number, index.get(to) as number));
      }
    }
    if (low.get(node) === index.get(node)) {
      const group: string[] = [];
      let member: string | undefined;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        group.push(member);
      } while (member !== node);
      if (group.length > 1) groups.push(group);
    }
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  const circles = new Map<string, string[]>();
  for (const group of groups) {
    const members = new Set(group);
    for (const from of [...group].sort()) {
      for (const to of [...(graph.get(from) ?? [])].sort()) {
        if (!members.has(to)) continue;
        const circle = [from, ...shortestPath(graph, members, to, from).slice(0, -1)];
        const first = circle.indexOf([...circle].sort()[0] as string);
        const canonical = [...circle.slice(first), ...circle.slice(0, first)];
        circles.set(canonical.join('>'), canonical);
      }
    }
  }
  return [...circles.values()];
}

/** The shortest path from `start` to `end` through the group's members, by BFS. */
function shortestPath(
  graph: Map<string, Set<string>>,
  members: Set<string>,
  start: string,
  end: string,
): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift() as string;
    if (node === end) break;
    for (const to of [...(graph.get(node) ?? [])].sort()) {
      if (!members.has(to) || to === start || previous.has(to)) continue;
      previous.set(to, node);
      queue.push(to);
    }
  }
  const path = [end];
  while (path[0] !== start) path.unshift(previous.get(path[0] as string) as string);
  return path;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const shared = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'shared');
  const { violations } = checkLayers(shared);
  for (const violation of violations) console.error(`${violation.kind}: ${violation.message}`);
  if (violations.length > 0) {
    console.error(`${violations.length} layer violation(s)`);
    process.exit(1);
  }
  console.log('layers: domain imports and context graph are clean');
}
