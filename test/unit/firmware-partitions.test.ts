import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EDGE_LIMITS } from '../../shared/edge/domain/model-format.ts';

/**
 * The ESP32 image's flash layout (firmware/partitions.csv, which platformio.ini names) against
 * what the firmware keeps in flash: two app slots as large as min_spiffs.csv's, and an NVS
 * partition that holds the configuration and, while a new edge model replaces the stored one,
 * both models (NVS writes a blob's new value before it drops the old).
 */

const firmware = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../firmware');
const FLASH_BYTES = 4 * 1024 * 1024;
// The partition table itself sits at 0x8000 and takes one 4 KB sector.
const FIRST_FREE = 0x9000;

interface Partition {
  name: string;
  type: string;
  subtype: string;
  offset: number;
  size: number;
}

function partitions(): Partition[] {
  return readFileSync(path.join(firmware, 'partitions.csv'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [name, type, subtype, offset, size] = line.split(',').map((f) => f.trim());
      return {
        name: name as string,
        type: type as string,
        subtype: subtype as string,
        offset: Number(offset),
        size: Number(size),
      };
    });
}

/** NVS entries (32 bytes each) a value of `bytes` takes: its header and its data. */
const entriesOf = (bytes: number) => 1 + Math.ceil(bytes / 32);

describe('ESP32 flash layout', () => {
  it('platformio.ini builds with firmware/partitions.csv', () => {
    const ini = readFileSync(path.join(firmware, 'platformio.ini'), 'utf8');
    expect(ini).toMatch(/^board_build\.partitions = partitions\.csv$/m);
  });

  it('the partitions fit 4 MB without overlapping, apps on 64 KB boundaries', () => {
    const table = [...partitions()].sort((a, b) => a.offset - b.offset);
    expect(table.length).toBeGreaterThan(0);
    let end = FIRST_FREE;
    for (const p of table) {
      expect(p.offset, p.name).toBeGreaterThanOrEqual(end);
      expect(p.offset % (p.type === 'app' ? 0x10000 : 0x1000), p.name).toBe(0);
      expect(p.size % 0x1000, p.name).toBe(0);
      end = p.offset + p.size;
    }
    expect(end).toBeLessThanOrEqual(FLASH_BYTES);
    const apps = table.filter((p) => p.type === 'app');
    expect(apps.map((p) => p.subtype)).toEqual(['ota_0', 'ota_1']);
    // As large as min_spiffs.csv's, which the image was sized for.
    for (const app of apps) expect(app.size, app.name).toBeGreaterThanOrEqual(0x1e0000);
  });

  it('NVS holds the configuration and two of the largest edge models at once', () => {
    const nvs = partitions().filter((p) => p.type === 'data' && p.subtype === 'nvs');
    expect(nvs.map((p) => p.name)).toEqual(['nvs']);
    const pages = (nvs[0] as Partition).size / 4096;
    // Each 4 KB page holds 126 entries; NVS keeps one page free for its garbage collection.
    const usable = (pages - 1) * 126;
    // A blob is cut into one chunk a page at most (a header entry each) plus an index entry.
    const model = entriesOf(EDGE_LIMITS.maxBytes) + Math.ceil(EDGE_LIMITS.maxBytes / 4032) + 1;
    // Every configuration key set, certificates and keys included, is under 8 KB of text;
    // counted twice over for the entries' headers and rounding.
    const configuration = 2 * entriesOf(8 * 1024);
    expect(2 * model + configuration).toBeLessThanOrEqual(usable);
  });
});
