import { OptionChecker, Redactor, redactUrl } from '@conveyor/core/plugin';

/** One broker URL, ready for amqplib, and how to show it without its credentials. */
export interface BrokerUrl {
  /** The URL handed to amqplib: the user's, plus a `heartbeat` parameter when it had none. */
  readonly href: string;
  /** The URL with its user name and password masked (see `redactUrl`), for logs and errors. */
  readonly redacted: string;
}

/** The `url` option, parsed: the brokers, and the redactor that hides their credentials. */
export interface BrokerUrls {
  readonly urls: readonly BrokerUrl[];
  readonly redactor: Redactor;
}

const check: OptionChecker = new OptionChecker('AmqpTransport');

/** Parses and checks the `url` option. Throws `ConfigError` without echoing a password. */
export function parseBrokerUrls(url: string | string[], heartbeatSeconds: number): BrokerUrls {
  const list = Array.isArray(url) ? url : [url];
  if (list.length === 0) check.fail('`url` lists no broker');
  const urls = list.map((raw, index) => parseOne(raw, index, heartbeatSeconds));
  return { urls, redactor: new Redactor([...list, ...urls.map((u) => u.href)]) };
}

function parseOne(raw: string, index: number, heartbeatSeconds: number): BrokerUrl {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    // The text may hold a password we cannot locate, so it is not quoted back.
    check.fail(`url #${index + 1} is not a valid URL`);
  }
  const redacted = redactUrl(raw);
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    check.fail(`${redacted} must use amqp:// or amqps://`);
  }
  if (!parsed.searchParams.has('heartbeat')) {
    parsed.searchParams.set('heartbeat', String(heartbeatSeconds));
  }
  return { href: parsed.toString(), redacted };
}
