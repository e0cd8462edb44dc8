import {
  Conveyor,
  MessageDecodeError,
  MemoryTransport,
  type TransportMessage,
} from '@conveyor/core';
import { decodeTaskMessage, encodeTaskMessage, parseCeleryJson } from '@conveyor/core/plugin';
import { Producer } from '../../src/producer/producer';
import { celeryWireReference } from '../../../../test/support/celery-reference';

const reference = celeryWireReference();
const celeryMessage = reference.message;

function asTransportMessage(): TransportMessage {
  return {
    headers: { ...celeryMessage.headers },
    properties: celeryMessage.properties,
    body: Buffer.from(celeryMessage.body),
  };
}

describe('Celery protocol v2 codec', () => {
  describe('against a message captured from Celery 5.2.6', () => {
    it('decodes the Celery message', () => {
      const decoded = decodeTaskMessage(asTransportMessage());
      expect(decoded.headers.task).toBe('tasks.add');
      expect(decoded.headers.id).toBe(celeryMessage.headers.id);
      expect(decoded.headers.timelimit).toEqual([null, null]);
      expect(decoded.args).toEqual([2, 3]);
      expect(decoded.kwargs).toEqual({});
      expect(decoded.embed).toEqual({ callbacks: null, errbacks: null, chain: null, chord: null });
      expect(decoded.properties.correlationId).toBe(celeryMessage.headers.id);
    });

    it('encodes the same call with every header and property Celery sets, with the same values', () => {
      const producer = new Producer(new MemoryTransport(), new Map());
      const id = celeryMessage.headers.id as string;
      const { message } = producer.build({
        name: 'tasks.add',
        args: [2, 3],
        kwargs: {},
        options: { taskId: id },
        queue: 'celery',
      });
      const wire = encodeTaskMessage(message);

      expect(Object.keys(wire.headers).sort()).toEqual(Object.keys(celeryMessage.headers).sort());
      // lang and origin name the producer; everything else must match Celery's value exactly.
      const { lang, origin, ...ours } = wire.headers;
      const { lang: pyLang, origin: pyOrigin, ...theirs } = celeryMessage.headers;
      expect(ours).toEqual(theirs);
      expect([lang, pyLang]).toEqual(['js', 'py']);
      expect(origin).toMatch(/^gen\d+@.+$/);
      expect(pyOrigin).toMatch(/^gen\d+@.+$/);

      const { replyTo, ...props } = wire.properties;
      const { replyTo: pyReplyTo, ...pyProps } = celeryMessage.properties;
      expect(props).toEqual(pyProps);
      expect(typeof replyTo).toBe(typeof pyReplyTo);
      expect(JSON.parse(wire.body.toString())).toEqual(JSON.parse(celeryMessage.body));
    });

    it('writes eta, expires and time limits as Celery does', () => {
      const producer = new Producer(new MemoryTransport(), new Map());
      const eta = new Date('2030-01-02T03:04:05.678Z');
      const { message, deliverAt } = producer.build({
        name: 'tasks.add',
        args: [],
        kwargs: { x: 'y' },
        options: {
          eta,
          expires: new Date('2030-01-03T00:00:00Z'),
          timeLimitMs: 30_000,
          softTimeLimitMs: 1_500,
        },
        queue: 'celery',
      });
      expect(message.headers.eta).toBe('2030-01-02T03:04:05.678000+00:00');
      expect(message.headers.expires).toBe('2030-01-03T00:00:00.000000+00:00');
      expect(message.headers.timelimit).toEqual([30, 1.5]);
      expect(message.headers.argsrepr).toBe('()');
      expect(message.headers.kwargsrepr).toBe("{'x': 'y'}");
      expect(deliverAt).toBe(eta.getTime());
    });

    it('writes Python reprs of the arguments', () => {
      const producer = new Producer(new MemoryTransport(), new Map());
      const { message } = producer.build({
        name: 't',
        args: [1, "it's", null, true, [1.5, { a: false }]],
        kwargs: {},
        options: {},
        queue: 'celery',
      });
      expect(message.headers.argsrepr).toBe(`(1, "it's", None, True, [1.5, {'a': False}])`);
      const single = producer.build({
        name: 't',
        args: ['x'],
        kwargs: {},
        options: {},
        queue: 'celery',
      });
      expect(single.message.headers.argsrepr).toBe("('x',)");
    });

    it('links a task sent from inside a task to its parent and root', async () => {
      const app = new Conveyor({ tasks: [] });
      const producer = new Producer(app.transport, new Map());
      const { runInTaskContext } = await import('../../src/task/task-context');
      const child = runInTaskContext(
        {
          id: 'parent-id',
          name: 'p',
          retries: 0,
          attempt: 1,
          headers: {} as never,
          signal: new AbortController().signal,
          rootId: 'root-id',
          parentId: null,
          queue: 'celery',
          redelivered: false,
          hostname: 'h',
          retry: () => {
            throw new Error('not in this test');
          },
          progress: async () => undefined,
        },
        () => producer.build({ name: 'c', args: [], kwargs: {}, options: {}, queue: 'celery' }),
      );
      expect(child.message.headers.parent_id).toBe('parent-id');
      expect(child.message.headers.root_id).toBe('root-id');
    });
  });

  describe('JSON as Python writes it (parseCeleryJson)', () => {
    it('reads bare NaN, Infinity and -Infinity outside strings as numbers', () => {
      expect(parseCeleryJson('[NaN, Infinity, -Infinity, {"a": [1, NaN]}]')).toEqual([
        NaN,
        Infinity,
        -Infinity,
        { a: [1, NaN] },
      ]);
    });

    it('leaves strings alone, escaped quotes included, and still refuses what is not JSON', () => {
      expect(parseCeleryJson('["NaN", "say \\"Infinity\\"", Infinity]')).toEqual([
        'NaN',
        'say "Infinity"',
        Infinity,
      ]);
      expect(() => parseCeleryJson('[NaN, oops]')).toThrow(SyntaxError);
      expect(() => parseCeleryJson('{"a": 1')).toThrow(SyntaxError);
    });

    it("reads kombu 5.3's tagged Python types (the form kombu/utils/json.py writes)", () => {
      // Debian's kombu here is 5.2, which writes none of these: the forms come from kombu's source.
      const tagged = (type: string, value: unknown) => ({ __type__: type, __value__: value });
      const text = JSON.stringify({
        at: tagged('datetime', '2026-11-30T10:00:00.123456+00:00'),
        naive: tagged('datetime', '2026-11-30T10:00:00'),
        day: tagged('date', '2026-11-30'),
        clock: tagged('time', '10:00:00'),
        price: tagged('decimal', '1.50'),
        id: tagged('uuid', { hex: '0F8FAD5BD9CB469FA16570867728950E' }),
        raw: tagged('bytes', 'héllo'),
        binary: tagged('base64', Buffer.from([0, 255]).toString('base64')),
        other: tagged('mytype', 1),
        notTagged: { __type__: 'datetime', __value__: 'x', extra: 1 },
      });
      expect(parseCeleryJson(text)).toEqual({
        at: new Date('2026-11-30T10:00:00.123Z'),
        naive: new Date('2026-11-30T10:00:00Z'),
        day: '2026-11-30',
        clock: '10:00:00',
        price: '1.50',
        id: '0f8fad5b-d9cb-469f-a165-70867728950e',
        raw: Buffer.from('héllo'),
        binary: Buffer.from([0, 255]),
        other: tagged('mytype', 1),
        notTagged: { __type__: 'datetime', __value__: 'x', extra: 1 },
      });
      expect(parseCeleryJson(`[${JSON.stringify(tagged('decimal', '2'))}, NaN]`)).toEqual([
        '2',
        NaN,
      ]);
    });

    it('decodes a Python message whose arguments hold NaN and Infinity', () => {
      const message = asTransportMessage();
      message.body = Buffer.from(
        '[[NaN, Infinity], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
      );
      expect(decodeTaskMessage(message).args).toEqual([NaN, Infinity]);
    });
  });

  describe('refuses malformed input with MessageDecodeError', () => {
    const valid = asTransportMessage;
    const cases: Array<[string, (m: TransportMessage) => void, RegExp]> = [
      ['a body that is not JSON', (m) => (m.body = Buffer.from('[[1, 2], {}')), /not valid JSON/],
      [
        'a body that is not [args, kwargs, embed]',
        (m) => (m.body = Buffer.from('{"a": 1}')),
        /JSON array/,
      ],
      ['args that are not an array', (m) => (m.body = Buffer.from('[1, {}, null]')), /args/],
      ['kwargs that are not an object', (m) => (m.body = Buffer.from('[[], [], null]')), /kwargs/],
      [
        'a content type other than JSON',
        (m) => (m.properties = { ...m.properties, contentType: 'application/x-python-serialize' }),
        /content type/,
      ],
      [
        'an encoding other than UTF-8',
        (m) => (m.properties = { ...m.properties, contentEncoding: 'binary' }),
        /encoding/,
      ],
      ['protocol v1 (no task headers)', (m) => (m.headers = {}), /protocol v1/],
      ['a missing task name', (m) => delete m.headers.task, /'task'/],
      ['a task name that is not a string', (m) => (m.headers.task = 42), /'task'/],
      ['a missing id', (m) => delete m.headers.id, /'id'/],
      ['retries that are not an integer', (m) => (m.headers.retries = 'two'), /'retries'/],
      ['negative retries', (m) => (m.headers.retries = -1), /'retries'/],
      ['an eta that is not a time', (m) => (m.headers.eta = 'tomorrow'), /'eta'/],
      ['expires of the wrong type', (m) => (m.headers.expires = 12), /'expires'/],
      ['a timelimit that is not [hard, soft]', (m) => (m.headers.timelimit = [1]), /'timelimit'/],
      [
        'ignore_result that is not a boolean',
        (m) => (m.headers.ignore_result = 'yes'),
        /'ignore_result'/,
      ],
      ['a body over the size limit', (m) => (m.body = Buffer.alloc(2048, 32)), /exceeds the limit/],
      [
        'nesting deeper than the limit',
        (m) => (m.body = Buffer.from(`[[${'['.repeat(80)}${']'.repeat(80)}], {}, null]`)),
        /nests deeper/,
      ],
    ];
    it.each(cases)('%s', (_label, corrupt, reason) => {
      const message = valid();
      corrupt(message);
      let caught: unknown;
      try {
        decodeTaskMessage(message, { maxBodyBytes: 1024 });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(MessageDecodeError);
      expect((caught as MessageDecodeError).reason).toMatch(reason);
      expect((caught as MessageDecodeError).code).toBe('CONVEYOR_ERR_MESSAGE_DECODE');
    });

    it('keeps the task id on the error when it could be read', () => {
      const message = valid();
      message.body = Buffer.from('nope');
      expect(() => decodeTaskMessage(message)).toThrow(
        expect.objectContaining({ taskId: celeryMessage.headers.id }) as Error,
      );
    });
  });
});
