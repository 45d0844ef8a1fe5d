import { describe, expect, it } from 'vitest';
import {
  LineProtocolError,
  linePrefix,
  seriesKey,
  toLine,
} from '../../shared/timeseries/line-protocol.ts';

describe('the line-protocol writer', () => {
  it('writes a bigint as an integer field and refuses one beyond 64 bits', () => {
    const point = { measurement: 'sensor_data', tags: { b: '2', a: '1' }, timeMs: 5 };
    expect(toLine({ ...point, fields: { mean: 1.5, count: 3n } })).toBe(
      'sensor_data,a=1,b=2 mean=1.5,count=3i 5',
    );
    expect(toLine({ ...point, fields: { count: -(2n ** 63n) } })).toBe(
      'sensor_data,a=1,b=2 count=-9223372036854775808i 5',
    );
    expect(() => toLine({ ...point, fields: { count: 2n ** 63n } })).toThrow(LineProtocolError);
  });

  it('writes nanosecond times only in ns precision, and refuses a sub-millisecond part out of range', () => {
    const point = { measurement: 'm', tags: {}, fields: { v: 1 }, timeMs: 1_700_000_000_123 };
    expect(toLine({ ...point, subMsNs: 42 })).toBe('m v=1 1700000000123');
    expect(toLine({ ...point, subMsNs: 42 }, 'ns')).toBe('m v=1 1700000000123000042');
    expect(toLine(point, 'ns')).toBe('m v=1 1700000000123000000');
    expect(() => toLine({ ...point, subMsNs: 1_000_000 }, 'ns')).toThrow(LineProtocolError);
  });

  it('starts every line of a series with its series key, escaped as in the line', () => {
    const tags = { 'tag key': 'a,b=c', tenant_id: '7' };
    expect(seriesKey('my measurement', tags)).toBe(
      'my\\ measurement,tag\\ key=a\\,b\\=c,tenant_id=7',
    );
    const line = toLine({ measurement: 'my measurement', tags, fields: { 'f=x': 2 }, timeMs: 1 });
    expect(line.startsWith(linePrefix('my measurement', tags, 'f=x').toString('utf8'))).toBe(true);
  });
});
