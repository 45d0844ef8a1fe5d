import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the benchmarks and the tests that can use public datasets look for them by default:
 * a `shared/datasets/<name>` folder beside the checkout (the data is not part of the project).
 */
export function datasetBesideCheckout(name: 'nab' | 'cmapss'): string {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  return path.resolve(root, '../shared/datasets', name);
}
