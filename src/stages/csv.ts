import { createHash } from 'node:crypto';
import { readMaybeGzip } from '../ml/idx.js';
import { StageUserError } from './types.js';

/*
 * The CSV reader of the dataset stage: a label column and pixel columns,
 * each mistake a StageUserError naming the file and line.
 */

/** A CSV file parsed into pixels and labels. */
export interface CsvPart {
  readonly pixels: Uint8Array;
  readonly labels: Int32Array;
  readonly count: number;
  readonly width: number;
  readonly sha256: string;
}

function unquote(field: string): string {
  const t = field.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

/** Parses a numeric CSV of one label column and pixel columns (0..255); `label` is a header name or an index. */
export async function readCsv(file: string, label: string | number): Promise<CsvPart> {
  const { raw, bytes } = await readMaybeGzip(file);
  const lines = bytes.toString('utf8').split('\n');
  let lineNo = 0;
  // Skip blank lines before the first row.
  while (lineNo < lines.length && (lines[lineNo] ?? '').trim() === '') lineNo++;
  const first = lines[lineNo];
  if (first === undefined) throw new StageUserError(`${file} is empty`);
  const firstFields = first.replace(/\r$/, '').split(',').map(unquote);
  const hasHeader = firstFields.some((f) => f === '' || !Number.isFinite(Number(f)));
  let labelIndex: number;
  if (typeof label === 'string') {
    if (!hasHeader) {
      throw new StageUserError(`${file}:${lineNo + 1}: no header row, so the label column "${label}" cannot be found`, 'give label_column as a 0-based index');
    }
    labelIndex = firstFields.indexOf(label);
    if (labelIndex < 0) {
      const shown = firstFields.slice(0, 5).join(', ') + (firstFields.length > 5 ? ', ...' : '');
      throw new StageUserError(`${file}:${lineNo + 1}: the header has no column "${label}" (columns: ${shown})`, 'set label_column to the name or 0-based index of the label column');
    }
  } else {
    labelIndex = label;
    if (labelIndex >= firstFields.length) {
      throw new StageUserError(`${file}:${lineNo + 1}: label column ${labelIndex} does not exist, rows have ${firstFields.length} columns`);
    }
  }
  const columns = firstFields.length;
  const width = columns - 1;
  if (width < 1) throw new StageUserError(`${file}:${lineNo + 1}: rows need a label and at least one pixel column`);
  if (hasHeader) lineNo++;

  const rows: number[] = [];
  for (let i = lineNo; i < lines.length; i++) {
    if ((lines[i] ?? '').trim() !== '') rows.push(i);
  }
  const pixels = new Uint8Array(rows.length * width);
  const labels = new Int32Array(rows.length);
  rows.forEach((i, r) => {
    const fields = (lines[i] ?? '').replace(/\r$/, '').split(',');
    if (fields.length !== columns) {
      throw new StageUserError(`${file}:${i + 1}: row has ${fields.length} fields, expected ${columns} like ${hasHeader ? 'the header' : 'the first row'}`);
    }
    let p = r * width;
    for (let c = 0; c < columns; c++) {
      const text = unquote(fields[c] ?? '');
      const value = Number(text);
      if (c === labelIndex) {
        if (text === '' || !Number.isInteger(value) || value < 0) {
          throw new StageUserError(`${file}:${i + 1}: label "${text}" is not a non-negative integer`);
        }
        labels[r] = value;
      } else {
        if (text === '' || !Number.isInteger(value) || value < 0 || value > 255) {
          throw new StageUserError(`${file}:${i + 1}: column ${c + 1} holds "${text}", expected a pixel value from 0 to 255`);
        }
        pixels[p++] = value;
      }
    }
  });
  return { pixels, labels, count: rows.length, width, sha256: createHash('sha256').update(raw).digest('hex') };
}
