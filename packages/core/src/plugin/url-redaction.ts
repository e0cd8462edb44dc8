/** What stands in for a user name or password that is not shown. */
export const REDACTED = '***';

/**
 * `url` fit for an error message or a log line: its password, when present, is replaced by `***`
 * and the user name kept (`amqp://guest:***@host:5672/vhost`), the same way in every package.
 * Text that does not parse as a URL is not echoed at all, since it may hold a secret in a place
 * we cannot recognise.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '<unparseable url>';
  }
  if (parsed.password) parsed.password = REDACTED;
  return parsed.toString();
}

/**
 * Keeps the credentials of a plugin's connection settings out of any text it emits (errors from
 * the client library, log lines). Built once from the URLs and passwords the user gave:
 * {@link redact} first shows each of those URLs as {@link redactUrl} does, then replaces every
 * remaining spelling of a password (as written, URL-decoded and URL-encoded) by `***` outside
 * those shown URLs, so a URL reads the same in every message even when its user name is its
 * password (`guest:guest`).
 */
export class Redactor {
  private readonly urls: Array<[raw: string, shown: string]> = [];
  private readonly secrets: string[];

  /**
   * @param urls connection URLs whose credentials are secret
   * @param passwords further secrets given apart from a URL (a `password` option)
   */
  constructor(
    urls: ReadonlyArray<string | undefined>,
    passwords: ReadonlyArray<string | undefined> = [],
  ) {
    const secrets: string[] = [];
    for (const url of urls) {
      if (!url) continue;
      this.urls.push([url, redactUrl(url)]);
      try {
        const parsed = new URL(url);
        secrets.push(parsed.password);
        this.urls.push([parsed.toString(), redactUrl(url)]);
      } catch {
        // Not a URL: shown nowhere, so nothing to take out of it.
      }
    }
    secrets.push(...passwords.filter((p): p is string => typeof p === 'string'));
    // Every spelling, longest first, so that a secret containing another is replaced whole.
    this.secrets = [
      ...new Set(
        secrets
          .filter((s) => s.length > 0)
          .flatMap((s) => [s, safeDecode(s), encodeURIComponent(s)]),
      ),
    ].sort((a, b) => b.length - a.length);
    this.urls.sort((a, b) => b[0].length - a[0].length);
  }

  /** `text` without any credential this redactor knows of. */
  redact(text: string): string {
    let out = text;
    for (const [raw, shown] of this.urls) out = out.split(raw).join(shown);
    const shown = [...new Set(this.urls.map(([, url]) => url))].map(escapeRegExp);
    // split() with a capturing group puts the shown URLs at the odd indexes: they stay whole.
    const parts = shown.length > 0 ? out.split(new RegExp(`(${shown.join('|')})`)) : [out];
    return parts.map((part, i) => (i % 2 === 1 ? part : this.scrub(part))).join('');
  }

  private scrub(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join(REDACTED);
    return out;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
