import { ConfigError } from '@conveyor/core';

/** One broker URL, ready for amqplib, and how to show it without its secrets. */
export interface BrokerUrl {
  /** The URL handed to amqplib: the user's, plus a `heartbeat` parameter when it had none. */
  readonly href: string;
  /** The URL with its password replaced by `***`, for logs and errors. */
  readonly redacted: string;
  /** Spellings of the password (as written and decoded) to scrub from any text we emit. */
  readonly secrets: readonly string[];
}

/** Parses and checks the `url` option. Throws `ConfigError` without echoing a password. */
export function parseBrokerUrls(url: string | string[], heartbeatSeconds: number): BrokerUrl[] {
  const list = Array.isArray(url) ? url : [url];
  if (list.length === 0) throw new ConfigError('AmqpTransport: `url` lists no broker');
  return list.map((raw, index) => parseOne(raw, index, heartbeatSeconds));
}

function parseOne(raw: string, index: number, heartbeatSeconds: number): BrokerUrl {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    // The text may hold a password we cannot locate, so it is not quoted back.
    throw new ConfigError(`AmqpTransport: url #${index + 1} is not a valid URL`);
  }
  const secrets = parsed.password ? [parsed.password, safeDecode(parsed.password)] : [];
  const redactedUrl = new URL(parsed.toString());
  if (redactedUrl.password) redactedUrl.password = '***';
  const redacted = redactedUrl.toString();
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    throw new ConfigError(`AmqpTransport: ${redacted} must use amqp:// or amqps://`);
  }
  if (!parsed.searchParams.has('heartbeat')) {
    parsed.searchParams.set('heartbeat', String(heartbeatSeconds));
  }
  return { href: parsed.toString(), redacted, secrets: secrets.filter((s) => s.length > 0) };
}

/**
 * `text` with every password of `urls` replaced by `***`. The redacted URLs in it are left
 * whole, so every message shows a broker the same way (`amqp://guest:***@host`) even when the
 * user name equals the password, as in guest:guest.
 */
export function redact(text: string, urls: readonly BrokerUrl[]): string {
  const shown = urls.map((url) => url.redacted.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const parts = shown.length > 0 ? text.split(new RegExp(`(${shown.join('|')})`)) : [text];
  // split() with a capturing group puts the redacted URLs at the odd indexes.
  return parts.map((part, index) => (index % 2 === 1 ? part : scrub(part, urls))).join('');
}

function scrub(text: string, urls: readonly BrokerUrl[]): string {
  let out = text;
  for (const url of urls) {
    for (const secret of url.secrets) out = out.split(secret).join('***');
  }
  return out;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
