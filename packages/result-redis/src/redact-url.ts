/**
 * Returns `url` fit for an error message or a log line: the password is replaced by `***`.
 * Anything that does not parse as a URL is not echoed at all, since it may hold a secret in a
 * place we cannot recognise.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '<unparseable url>';
  }
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
