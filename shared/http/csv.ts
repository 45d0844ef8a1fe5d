/**
 * CSV as RFC 4180 writes it (comma-separated, fields with a comma, quote or line break in
 * double quotes, quotes doubled), for request bodies a spreadsheet or a factory tool makes
 * and answers those tools read back.
 */

export class CsvSyntaxError extends Error {
  override readonly name = 'CsvSyntaxError';
  constructor(
    message: string,
    /** 1-based line of the file where the problem is. */
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
  }
}

/** The file's records, each an array of fields; a byte-order mark and a last empty line are ignored. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let fieldStarted = false;
  const endRecord = () => {
    record.push(field);
    records.push(record);
    record = [];
    field = '';
    fieldStarted = false;
  };
  while (i < text.length) {
    const char = text[i] as string;
    if (quoted) {
      if (char === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const next = text[i];
        if (next !== undefined && next !== ',' && next !== '\r' && next !== '\n') {
          throw new CsvSyntaxError('a closing quote must end its field', line);
        }
        continue;
      }
      if (char === '\n') line++;
      field += char;
      i++;
      continue;
    }
    if (char === '"') {
      if (fieldStarted) throw new CsvSyntaxError('a quote inside an unquoted field', line);
      quoted = true;
      fieldStarted = true;
      i++;
    } else if (char === ',') {
      record.push(field);
      field = '';
      fieldStarted = false;
      i++;
    } else if (char === '\r' || char === '\n') {
      endRecord();
      i += char === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line++;
    } else {
      field += char;
      fieldStarted = true;
      i++;
    }
  }
  if (quoted) throw new CsvSyntaxError('a quoted field is not closed', line);
  if (fieldStarted || record.length > 0) endRecord();
  return records;
}

/**
 * The records after the header as objects keyed by the header's column names; an empty
 * cell is left out, so it reads as an absent field. Each object carries the file line its
 * record starts on, for messages about it.
 */
export function csvRecords(text: string): Array<{ line: number; fields: Record<string, string> }> {
  const records = parseCsv(text);
  const header = records[0];
  if (!header || header.every((name) => name.trim() === '')) {
    throw new CsvSyntaxError('the first line must be a header naming the columns', 1);
  }
  const names = header.map((name) => name.trim());
  const seen = new Set<string>();
  for (const name of names) {
    if (name === '') throw new CsvSyntaxError('a column of the header has no name', 1);
    if (seen.has(name)) throw new CsvSyntaxError(`column "${name}" appears twice`, 1);
    seen.add(name);
  }
  const rows: Array<{ line: number; fields: Record<string, string> }> = [];
  let line = 2;
  for (const record of records.slice(1)) {
    const lines = 1 + record.join(',').split('\n').length - 1;
    if (record.length === 1 && record[0] === '') {
      line += lines;
      continue;
    }
    if (record.length !== names.length) {
      throw new CsvSyntaxError(
        `expected ${names.length} fields as in the header, found ${record.length}`,
        line,
      );
    }
    const fields: Record<string, string> = {};
    names.forEach((name, index) => {
      const value = record[index] as string;
      if (value !== '') fields[name] = value;
    });
    rows.push({ line, fields });
    line += lines;
  }
  return rows;
}

/** One field as RFC 4180 writes it: quoted only when it has to be. */
export function csvQuote(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A CSV file with a header and one line per row, lines ended with CRLF as RFC 4180 says. */
export function formatCsv(
  columns: readonly string[],
  rows: ReadonlyArray<Record<string, string | number | null | undefined>>,
): string {
  const lines = [columns.join(',')];
  for (const row of rows) lines.push(columns.map((column) => csvQuote(row[column])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
