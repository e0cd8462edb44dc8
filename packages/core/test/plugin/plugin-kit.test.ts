import { ConfigError, ConnectionError } from '@conveyor/core';
import {
  BackgroundErrors,
  OptionChecker,
  Redactor,
  bounded,
  closeWithin,
  redactUrl,
  renamedOption,
} from '@conveyor/core/plugin';

describe('OptionChecker', () => {
  const check = new OptionChecker('SomeTransport');

  it('returns a value within its rule', () => {
    expect(check.number('timeoutMs', 5, { min: 1 })).toBe(5);
    expect(check.optionalNumber('timeoutMs', undefined, 7, { min: 1 })).toBe(7);
    expect(check.string('name', 'abc', { nonEmpty: true, maxLength: 3 })).toBe('abc');
    expect(check.oneOf('queueType', 'quorum', ['classic', 'quorum'] as const)).toBe('quorum');
  });

  it.each([
    [
      () => check.number('timeoutMs', 0, { min: 1 }),
      'SomeTransport: `timeoutMs` must be a number from 1 (got 0)',
    ],
    [
      () => check.number('size', 1.5, { min: 1, integer: true }),
      'SomeTransport: `size` must be an integer from 1 (got 1.5)',
    ],
    [
      () => check.number('jitter', 2, { min: 0, max: 1 }),
      'SomeTransport: `jitter` must be a number from 0 to 1 (got 2)',
    ],
    [
      () => check.number('timeoutMs', Number.NaN),
      'SomeTransport: `timeoutMs` must be a number (got NaN)',
    ],
    [
      () => check.number('timeoutMs', '5' as unknown),
      "SomeTransport: `timeoutMs` must be a number (got '5')",
    ],
    [() => check.string('name', '', { nonEmpty: true }), 'SomeTransport: `name` must not be empty'],
    [
      () => check.oneOf('queueType', 'lazy', ['classic', 'quorum']),
      "SomeTransport: queueType must be 'classic' or 'quorum', not 'lazy'",
    ],
  ])(
    'refuses a bad value with a ConfigError naming the class and the option (%#)',
    (call, message) => {
      expect(call).toThrow(ConfigError);
      expect(call).toThrow(message);
    },
  );
});

describe('URL redaction', () => {
  it('masks the password of a URL and keeps its user name', () => {
    expect(redactUrl('amqp://guest:secret@host:5672/vhost')).toBe(
      'amqp://guest:***@host:5672/vhost',
    );
    expect(redactUrl('redis://:secret@host:6379/0')).toBe('redis://:***@host:6379/0');
    expect(redactUrl('postgresql://host/db')).toBe('postgresql://host/db');
    expect(redactUrl('not a url with secret')).toBe('<unparseable url>');
  });

  it('takes the credentials of its URLs out of any text, in every spelling', () => {
    const redactor = new Redactor(['amqp://someone:p%40ss@host:5672'], ['extra-secret']);
    expect(redactor.redact('failed: amqp://someone:p%40ss@host:5672 refused')).toBe(
      'failed: amqp://someone:***@host:5672 refused',
    );
    expect(redactor.redact('bad password p@ss, or p%40ss, or extra-secret')).toBe(
      'bad password ***, or ***, or ***',
    );
  });
});

describe('bounded waits', () => {
  it('rejects with a ConnectionError once the time is up, and passes results through', async () => {
    await expect(bounded(new Promise(() => undefined), 20, 'kit: read')).rejects.toThrow(
      new ConnectionError('kit: read did not complete within 20 ms'),
    );
    await expect(bounded(Promise.resolve(3), 1_000, 'kit: read')).resolves.toBe(3);
    const failed = bounded(Promise.reject(new Error('boom')), 1_000, 'kit: read');
    await expect(failed).rejects.toBeInstanceOf(ConnectionError);
    await expect(failed).rejects.toThrow('kit: read failed: boom');
  });

  it('gives up on a close that never settles, and says so', async () => {
    await expect(closeWithin(() => new Promise(() => undefined), 20)).resolves.toBe(false);
    await expect(closeWithin(() => Promise.reject(new Error('gone')), 1_000)).resolves.toBe(true);
  });
});

describe('BackgroundErrors', () => {
  it('hands errors to onError and to listeners as ConnectionErrors, ignoring a hook that throws', () => {
    const seen: string[] = [];
    const errors = new BackgroundErrors('kit', (error) => {
      seen.push(`hook ${error.message}`);
      throw new Error('a broken hook');
    });
    const stop = errors.listen((error) => seen.push(`listener ${error.constructor.name}`));
    errors.report(new Error('lost'));
    stop();
    errors.report(new ConnectionError('again'));
    expect(seen).toEqual(['hook lost', 'listener ConnectionError', 'hook again']);
  });

  it('warns on the console by default, once in a while rather than for every error', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const errors = new BackgroundErrors('kit');
      errors.report(new Error('first'));
      errors.report(new Error('second'));
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn).toHaveBeenCalledWith('[conveyor kit] first (retrying)');
    } finally {
      warn.mockRestore();
    }
  });
});

describe('renamedOption', () => {
  interface Options {
    connectTimeoutMs?: number;
    connectionTimeoutMs?: number;
  }

  it('reads the new name, else the old one with a deprecation warning, and refuses both', () => {
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const read = (options: Options) =>
        renamedOption('Kit', options, 'connectTimeoutMs', 'connectionTimeoutMs');
      expect(read({ connectTimeoutMs: 1 })).toBe(1);
      expect(read({ connectionTimeoutMs: 2 })).toBe(2);
      expect(read({ connectionTimeoutMs: 3 })).toBe(3);
      expect(() => read({ connectTimeoutMs: 1, connectionTimeoutMs: 2 })).toThrow(ConfigError);
      expect(emitWarning).toHaveBeenCalledTimes(1);
      expect(emitWarning).toHaveBeenCalledWith(
        'Kit: the option `connectionTimeoutMs` is deprecated and will be removed in the next minor version; use `connectTimeoutMs`',
        { type: 'DeprecationWarning', code: 'CONVEYOR_DEP_OPTION' },
      );
    } finally {
      emitWarning.mockRestore();
    }
  });
});
