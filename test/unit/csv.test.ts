import { describe, expect, it } from 'vitest';
import { CsvSyntaxError, csvRecords, formatCsv, parseCsv } from '../../shared/http/csv.ts';

describe('CSV (RFC 4180)', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks, CRLF or LF', () => {
    expect(parseCsv('a,b\r\n"x, y","say ""hi"""\n"two\nlines",\r\n')).toEqual([
      ['a', 'b'],
      ['x, y', 'say "hi"'],
      ['two\nlines', ''],
    ]);
  });

  it('keys records by the header, leaves empty cells out and skips blank lines', () => {
    expect(csvRecords('\uFEFFdevice_id, name ,location\nd1,One,\n\nd2,Two,Hall\n')).toEqual([
      { line: 2, fields: { device_id: 'd1', name: 'One' } },
      { line: 4, fields: { device_id: 'd2', name: 'Two', location: 'Hall' } },
    ]);
  });

  it('refuses what it cannot read unambiguously, naming the line', () => {
    const problem = (text: string) => {
      try {
        csvRecords(text);
        return 'read';
      } catch (error) {
        expect(error).toBeInstanceOf(CsvSyntaxError);
        return (error as Error).message;
      }
    };
    expect(problem('a,b\n"open,x\n')).toMatch(/not closed/);
    expect(problem('a,b\nx"y,z\n')).toMatch(/^line 2: a quote inside/);
    expect(problem('a,b\n"x"y,z\n')).toMatch(/closing quote/);
    expect(problem('a,b\n1,2,3\n')).toMatch(/^line 2: expected 2 fields/);
    expect(problem('a,a\n1,2\n')).toMatch(/appears twice/);
    expect(problem('')).toMatch(/header/);
  });

  it('writes what it reads back', () => {
    const rows = [{ id: 1, text: 'plain' }, { id: 2, text: 'a "quoted", multi\nline' }, { id: 3 }];
    const written = formatCsv(['id', 'text'], rows);
    expect(written).toBe('id,text\r\n1,plain\r\n2,"a ""quoted"", multi\nline"\r\n3,\r\n');
    expect(csvRecords(written).map((record) => record.fields)).toEqual([
      { id: '1', text: 'plain' },
      { id: '2', text: 'a "quoted", multi\nline' },
      { id: '3' },
    ]);
  });
});
