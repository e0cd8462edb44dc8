/**
 * Time formats on Celery's wire. Celery writes `date_done` as a naive UTC ISO string with
 * microseconds (`2026-11-24T04:15:21.037806`) and `eta`/`expires` as ISO strings with an offset.
 */

/** `date_done` in Celery's format: UTC, no offset, six fraction digits. */
export function celeryDateDone(date: Date = new Date()): string {
  return `${date.toISOString().slice(0, 23)}000`;
}

/** An `eta` or `expires` header value: ISO 8601 with an explicit UTC offset. */
export function celeryTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000+00:00`;
}

/**
 * Parses an ISO 8601 timestamp from Celery. A string without an offset is taken as UTC, as
 * Celery does with `enable_utc` (its default). Returns undefined when it is not a valid time.
 */
export function parseCeleryTimestamp(text: string): Date | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(
    text.trim(),
  );
  if (!match) return undefined;
  const [, main, fraction = '', offset = 'Z'] = match;
  // JavaScript's Date reads at most milliseconds; Python writes microseconds.
  const millis = fraction ? fraction.slice(0, 4).padEnd(4, '0') : '';
  const date = new Date(`${main!.replace(' ', 'T')}${millis}${offset}`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
