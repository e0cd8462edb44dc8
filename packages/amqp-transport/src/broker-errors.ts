/**
 * Reading amqplib's errors. A channel the server closes rejects its pending operation with an
 * Error whose numeric `code` is the AMQP reply code and whose message quotes RabbitMQ's text;
 * a lost connection rejects with a plain Error (no code). The distinction decides between
 * "retry after reconnect" and "tell the caller".
 */

/** Reply codes RabbitMQ closes a channel with because of what the client asked. */
const REFUSAL_CODES = new Set([403, 404, 405, 406]);

/** The AMQP reply code of an amqplib error, if the server sent one. */
export function replyCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** True when the server refused the operation (missing entity, inequivalent declaration...). */
export function isRefusal(error: unknown): boolean {
  const code = replyCode(error);
  return code !== undefined && REFUSAL_CODES.has(code);
}

/** RabbitMQ's own words, e.g. `NOT_FOUND - no exchange 'x' in vhost '/'`. */
export function serverText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const quoted = /with message "(.*)"$/s.exec(message);
  return quoted ? quoted[1]! : message;
}

/** Name of the exchange a 404 says does not exist. */
export function missingExchange(error: unknown): string | undefined {
  if (replyCode(error) !== 404) return undefined;
  return /no exchange '(.*)' in vhost/s.exec(serverText(error))?.[1];
}

/** The argument a 406 "inequivalent arg" names, e.g. `x-max-priority` or `durable`. */
export function inequivalentArgument(error: unknown): string | undefined {
  if (replyCode(error) !== 406) return undefined;
  return /inequivalent arg '([^']+)'/.exec(serverText(error))?.[1];
}

/** Message of any thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Why RabbitMQ refused to open a connection for good, in words a user acts on, or undefined for
 * a failure worth retrying (a broker down, a network cut). Retrying a refusal only repeats it:
 * - a wrong user name or password: the handshake ends with 403 ACCESS_REFUSED;
 * - a missing vhost (or one the user may not use): RabbitMQ answers connection.open with
 *   connection.close 530, which amqplib reports as `Expected ConnectionOpenOk; got
 *   <ConnectionClose channel:0>`, dropping the server's text.
 */
export function handshakeRefusal(error: unknown, href: string): string | undefined {
  const message = messageOf(error);
  const url = new URL(href);
  if (/^Handshake terminated by server: 403\b/.test(message)) {
    return `${serverText(error)} (wrong user name or password)`;
  }
  if (/^Expected ConnectionOpenOk; got <ConnectionClose\b/.test(message)) {
    const vhost = url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : '/';
    return `vhost not found: RabbitMQ refused to open vhost '${vhost}' (it does not exist, or the user has no access to it)`;
  }
  return undefined;
}
