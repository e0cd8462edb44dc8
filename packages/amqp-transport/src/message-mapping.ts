import type { Message, Options } from 'amqplib';
import {
  BROKER_DEAD_LETTERING_HEADERS,
  type MessageProperties,
  type TransportMessage,
} from '@conveyor/core/plugin';

/** amqplib publish options for a message: its properties and headers, persistent unless told. */
export function publishOptions(message: TransportMessage): Options.Publish {
  const p = message.properties;
  const options: Options.Publish = {
    headers: toTable(message.headers),
    deliveryMode: p.deliveryMode ?? 2,
    // A message nobody's queue takes comes back (basic.return) instead of vanishing.
    mandatory: true,
  };
  if (p.contentType !== undefined) options.contentType = p.contentType;
  if (p.contentEncoding !== undefined) options.contentEncoding = p.contentEncoding;
  if (p.correlationId !== undefined) options.correlationId = p.correlationId;
  if (p.replyTo !== undefined) options.replyTo = p.replyTo;
  if (p.priority !== undefined) options.priority = p.priority;
  if (p.messageId !== undefined) options.messageId = p.messageId;
  return options;
}

/**
 * The transport message of a delivered AMQP message. With `stripDeadLettering` (a message that
 * arrived through the delay delivery exchange) RabbitMQ's dead-lettering headers are removed: the
 * message collected them on its way down the delay levels, and they describe our plumbing, not
 * the task.
 */
export function transportMessage(message: Message, stripDeadLettering: boolean): TransportMessage {
  const headers: Record<string, unknown> = { ...(message.properties.headers ?? {}) };
  if (stripDeadLettering) for (const name of BROKER_DEAD_LETTERING_HEADERS) delete headers[name];
  const source = message.properties;
  const properties: MessageProperties = {};
  if (source.contentType !== undefined) properties.contentType = String(source.contentType);
  if (source.contentEncoding !== undefined)
    properties.contentEncoding = String(source.contentEncoding);
  if (source.correlationId !== undefined) properties.correlationId = String(source.correlationId);
  if (source.replyTo !== undefined) properties.replyTo = String(source.replyTo);
  if (source.priority !== undefined) properties.priority = Number(source.priority);
  if (source.deliveryMode !== undefined) properties.deliveryMode = Number(source.deliveryMode);
  if (source.messageId !== undefined) properties.messageId = String(source.messageId);
  return { headers, properties, body: message.content };
}

/**
 * Headers as an AMQP field table. JSON semantics: `undefined` members are left out and
 * `undefined` array items become null, since the AMQP codec has no undefined.
 */
function toTable(headers: Record<string, unknown>): Record<string, unknown> {
  const table: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined) table[key] = toFieldValue(value);
  }
  return table;
}

function toFieldValue(value: unknown): unknown {
  if (value === undefined) return null;
  if (Array.isArray(value)) return value.map(toFieldValue);
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) {
    return toTable(value as Record<string, unknown>);
  }
  return value;
}
