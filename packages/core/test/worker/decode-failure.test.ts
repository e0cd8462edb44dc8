import {
  Conveyor,
  DEAD_LETTER_REASON_HEADER,
  MemoryTransport,
  Task,
  TaskService,
} from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import type * as MessageCodec from '../../src/protocol/message-codec';
import { deadLetters } from './fixtures';

/**
 * The decoder is ours and throws only MessageDecodeError; this stands in for a bug in it that
 * throws anything else (here not even an Error), which intake must not take for a decode error.
 */
jest.mock('../../src/protocol/message-codec', () => {
  const actual = jest.requireActual<typeof MessageCodec>('../../src/protocol/message-codec');
  return {
    ...actual,
    decodeTaskMessage: (...args: Parameters<typeof actual.decodeTaskMessage>) => {
      if (args[0].headers.task === 'broken.run') throw null;
      return actual.decodeTaskMessage(...args);
    },
  };
});

let ran = 0;

@TaskService({ name: 'broken', queue: 'broken' })
class Broken {
  @Task()
  run(): void {
    ran += 1;
  }
}

describe('Worker: a decoding failure that is not a MessageDecodeError', () => {
  it('dead-letters the message with what was thrown, reports it, and keeps running', async () => {
    const transport = new MemoryTransport();
    const app = new Conveyor({ broker: transport, tasks: [Broken] });
    const worker = app.worker({ handleSignals: false });
    const errors: Error[] = [];
    worker.on('worker-error', (error) => errors.push(error));
    await worker.start();
    try {
      await app.send('broken.run', []);
      await waitFor(() => deadLetters(transport, 'broken').length === 1, 'the dead letter');
      const [dead] = deadLetters(transport, 'broken');
      expect(dead!.headers[DEAD_LETTER_REASON_HEADER]).toBe('could not be decoded: null');
      expect(errors.map((e) => e.message)).toEqual(['null']);
      expect(ran).toBe(0);
    } finally {
      await worker.stop();
      await app.close();
    }
  });
});
