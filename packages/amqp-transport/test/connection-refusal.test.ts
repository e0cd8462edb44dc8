import { randomUUID } from 'node:crypto';
import { ConnectionError } from '@conveyor/core';
import { AmqpTransport } from '../src';
import { AMQP_URL, RecordingErrors } from '../../../test/support/amqp-transport';

/** The test broker's URL with another password or vhost. */
function brokerUrl(change: { password?: string; vhost?: string }): URL {
  const url = new URL(AMQP_URL);
  if (change.password !== undefined) url.password = change.password;
  if (change.vhost !== undefined) url.pathname = `/${change.vhost}`;
  return url;
}

/** What a transport on `url` says when asked to declare a queue, and what it logged meanwhile. */
async function firstFailure(
  url: string,
  connectTimeoutMs = 30_000,
): Promise<{ error: unknown; warnings: string[] }> {
  const recorded = new RecordingErrors();
  const transport = new AmqpTransport({
    url,
    onError: recorded.onError,
    connectTimeoutMs,
    reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
  });
  try {
    const error = await transport.declareQueue({ name: `refusal-${randomUUID()}` }).then(
      () => undefined,
      (e: unknown) => e,
    );
    return { error, warnings: recorded.messages };
  } finally {
    await transport.close();
  }
}

describe('Connection refusals from RabbitMQ', () => {
  it("fails at once with the broker's reason on a wrong password, without retrying", async () => {
    const password = `wrong-${randomUUID()}`;
    // The connect timeout is long: only a refusal that is not retried ends the call within the test's time.
    const url = brokerUrl({ password });
    const { error, warnings } = await firstFailure(url.href);
    expect(error).toBeInstanceOf(ConnectionError);
    const message = (error as Error).message;
    expect(message).toMatch(/ACCESS_REFUSED - Login was refused/);
    expect(message).toContain(`amqp://${url.username}:***@${url.host}`);
    expect(message).not.toContain(password);
    expect((error as Error).cause).toBeInstanceOf(Error);
    expect(warnings.filter((w) => /retrying in/.test(w))).toEqual([]);
  }, 20_000);

  it('says "vhost not found" for a missing vhost, without retrying', async () => {
    const vhost = `conveyor-missing-${randomUUID()}`;
    const { error, warnings } = await firstFailure(brokerUrl({ vhost }).href);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(
      new RegExp(`vhost not found: RabbitMQ refused to open vhost '${vhost}'`),
    );
    expect(warnings.filter((w) => /retrying in/.test(w))).toEqual([]);
  }, 20_000);

  it('masks credentials the same way in warnings and errors, even when the user name is the password', async () => {
    // Nothing listens on port 1: a failure that is retried, so warnings are written.
    const { error, warnings } = await firstFailure('amqp://guest:guest@127.0.0.1:1', 500);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(warnings.length).toBeGreaterThan(0);
    for (const text of [(error as Error).message, ...warnings]) {
      expect(text).toContain('amqp://guest:***@127.0.0.1:1');
      expect(text).not.toContain('***:***');
    }
  });
});
