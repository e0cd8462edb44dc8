import { randomUUID } from 'node:crypto';
import { AmqpTransport, type AmqpTransportOptions } from '../../packages/amqp-transport/src';
import { delayNamespace, removeDelayNamespace, removeQueues } from './rabbitmq';
import { AMQP_URL } from './services';

/** The AMQP transport's own tests: a transport per test, quiet, with fast reconnects. */

export * from './rabbitmq';
export { AMQP_URL };

/** A unique name for a test queue. */
export function queueName(label: string): string {
  return `amqp-test-${label}-${randomUUID()}`;
}

/** Collects the transport's background errors (its `onError`) instead of printing them. */
export class RecordingErrors {
  readonly messages: string[] = [];
  readonly onError = (error: Error): void => {
    this.messages.push(error.message);
  };
}

/** A transport on the test broker with a quiet logger and fast reconnects. */
export function testTransport(options: AmqpTransportOptions = {}): AmqpTransport {
  return new AmqpTransport({
    url: AMQP_URL,
    onError: new RecordingErrors().onError,
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    ...options,
  });
}

/** A plain message. */
export function textMessage(body: string, headers: Record<string, unknown> = {}) {
  return {
    headers,
    properties: { contentType: 'text/plain', deliveryMode: 2 },
    body: Buffer.from(body),
  };
}

/** What {@link useTestTransport} gives a test file. */
export interface TestTransportContext {
  /** This test's transport (a new one per test). */
  readonly transport: AmqpTransport;
  /** Queue names to remove after this test. */
  readonly queues: string[];
  /** The file's delay namespace, removed after the file. */
  readonly namespace: string;
}

/**
 * Registers the usual lifecycle for a test file: a transport per test in the file's own delay
 * namespace, closed after each test with the queues it used removed, the namespace after all.
 */
export function useTestTransport(options: AmqpTransportOptions = {}): TestTransportContext {
  const namespace = delayNamespace();
  const queues: string[] = [];
  let transport: AmqpTransport | undefined;
  beforeEach(() => {
    transport = testTransport({ delayNamespace: namespace, ...options });
  });
  afterEach(async () => {
    await transport?.close();
    await removeQueues(queues.splice(0));
  });
  afterAll(async () => {
    await removeDelayNamespace(namespace);
  });
  return {
    get transport() {
      return transport!;
    },
    queues,
    namespace,
  };
}
