import type { Painter, Style } from './paint';

/** One column of a {@link renderTable} table. */
export interface Column {
  header: string;
  /** Numbers read best right-aligned. */
  align?: 'left' | 'right';
}

/** A cell: its text, and a style when it should stand out. */
export type Cell = string | number | { text: string; style?: Style };

/**
 * Renders rows as an aligned table with a bold header; widths are measured before styling,
 * so colours never shift a column.
 */
export function renderTable(
  columns: readonly Column[],
  rows: readonly Cell[][],
  paint: Painter,
): string {
  const texts = rows.map((row) => row.map(cellText));
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...texts.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[], styles: ReadonlyArray<Style | undefined>): string =>
    cells
      .map((text, i) => {
        const padded =
          columns[i]!.align === 'right' ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
        return paint(padded, styles[i]);
      })
      .join('  ')
      .trimEnd();
  const header = line(
    columns.map((c) => c.header),
    columns.map(() => 'bold'),
  );
  const body = rows.map((row, r) => line(texts[r]!, row.map(cellStyle)));
  return [header, ...body].join('\n');
}

function cellText(cell: Cell): string {
  return typeof cell === 'object' ? cell.text : String(cell);
}

function cellStyle(cell: Cell): Style | undefined {
  return typeof cell === 'object' ? cell.style : undefined;
}
