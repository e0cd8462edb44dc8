import { randomUUID } from 'node:crypto';
import type { ResultBackend } from '../backend/result-backend';
import { DEFAULT_DEAD_LETTER_PAGE_SIZE } from '../defaults';
import { requireCapability, type TransportWith } from '../capability/capability';
import { ConfigError, ConnectionError, UnroutableError } from '../errors';
import { deadLetterQueueName, type FetchedMessage, type Transport } from '../transport/transport';
import {
  describeDeadLetter,
  hasExpired,
  replayMessage,
  taskId,
  type DeadLetter,
} from './dead-letter';

/** Options of {@link DeadLetters}. */
export interface DeadLettersOptions {
  /**
   * The broker that holds the dead-letter queues. It needs the optional capability
   * `queueAccess` (`@conveyor/amqp-transport` and the memory transport have it).
   */
  transport: Transport;
  /**
   * The result backend whose stored state a replay under the same id resets. Without one, a
   * replay under the same id leaves results alone (there are none to reset).
   * @defaultValue none
   */
  backend?: ResultBackend;
}

/** Which page of a dead-letter queue to read. */
export interface DeadLetterPageOptions {
  /**
   * Messages to skip from the head of the queue.
   * @defaultValue 0
   */
  offset?: number;
  /**
   * Most messages to return.
   * @defaultValue {@link DEFAULT_DEAD_LETTER_PAGE_SIZE} (50)
   */
  limit?: number;
}

/** One page of a dead-letter queue. */
export interface DeadLetterPage {
  readonly items: DeadLetter[];
  readonly offset: number;
  /** Messages in the dead-letter queue when it was read (ready ones, as the broker counted them). */
  readonly total: number;
  /** Offset of the next page, or undefined when this page reached the end. */
  readonly nextOffset: number | undefined;
}

/** The dead letters an operation acts on: those with the given task ids, or all of them. */
export type DeadLetterSelection = { readonly ids: readonly string[] } | { readonly all: true };

/** Options of {@link DeadLetters.replay}. */
export interface ReplayOptions {
  /**
   * Send each replayed task under a new id, leaving the stored FAILURE of the old id as it is.
   * By default a replay keeps the id and deletes the stored state of that id first, so whoever
   * holds the task's `AsyncResult` (the original caller, a chain's parent) waits for the new run.
   * @defaultValue false
   */
  newId?: boolean;
  /**
   * Told of each dead letter as soon as it is replayed (its copy confirmed), so a caller can
   * show progress that survives a failure halfway (the report is lost with the exception).
   */
  onReplayed?: (replayed: { readonly id: string | undefined; readonly newId?: string }) => void;
}

/** Options of {@link DeadLetters.purge}. */
export interface PurgeOptions {
  /** Told of each dead letter as soon as it is deleted (its id, when it has one). */
  onPurged?: (id: string | undefined) => void;
}

/** What a replay did. */
export interface ReplayReport {
  /** Dead letters published again to their task queue, with the new id under `newId`. */
  readonly replayed: Array<{ readonly id: string | undefined; readonly newId?: string }>;
  /**
   * Replayed dead letters whose removal from the dead-letter queue was not confirmed (the
   * connection was lost after the copy was confirmed): the task may be there twice.
   */
  readonly keptAfterReplay: Array<string | undefined>;
  /**
   * Replayed dead letters whose `expires` had already passed: a replay keeps `expires`, so a
   * worker receives them and stores them REVOKED (expired) without running them.
   */
  readonly expired: Array<string | undefined>;
  /** Asked-for ids not found in the dead-letter queue. */
  readonly notFound: string[];
}

/** What a purge did. */
export interface PurgeReport {
  /** Dead letters deleted. */
  readonly purged: number;
  /** Asked-for ids not found in the dead-letter queue. */
  readonly notFound: string[];
}

/**
 * The dead letters of task queues: what is in `<queue>.dead`, replaying it to `<queue>`, and
 * purging it. Every operation reads the dead-letter queue one message at a time and holds what
 * it has read until it is done; what it does not remove goes back where it was, and anything
 * held returns to the queue by itself if the process dies, so reading loses nothing.
 *
 * A replay moves a message: it publishes a copy to the task queue, waits for the broker's
 * confirm, and only then removes the dead letter. A crash in between leaves the task in both
 * queues (a duplicate), never in neither.
 */
export class DeadLetters {
  private readonly transport: TransportWith<'queueAccess'>;
  private readonly backend: ResultBackend | undefined;

  /** Throws `ConfigError` if the transport lacks the capability `queueAccess`. */
  constructor(options: DeadLettersOptions) {
    this.transport = requireCapability(
      options.transport,
      'queueAccess',
      'DeadLetters',
      '@conveyor/amqp-transport or the memory transport',
    );
    this.backend = options.backend;
  }

  /** Reads a page of `<queue>.dead` without removing anything. */
  async list(queue: string, page: DeadLetterPageOptions = {}): Promise<DeadLetterPage> {
    const offset = page.offset ?? 0;
    const limit = page.limit ?? DEFAULT_DEAD_LETTER_PAGE_SIZE;
    if (!Number.isInteger(offset) || offset < 0)
      throw new ConfigError('dead letters: `offset` must be an integer from 0');
    if (!Number.isInteger(limit) || limit < 1)
      throw new ConfigError('dead letters: `limit` must be an integer from 1');
    const held: FetchedMessage[] = [];
    const items: DeadLetter[] = [];
    let remaining = 0;
    try {
      while (held.length < offset + limit) {
        const fetched = await this.fetch(queue);
        if (!fetched) {
          remaining = 0;
          break;
        }
        held.push(fetched);
        remaining = fetched.remaining;
        if (held.length > offset) items.push(describeDeadLetter(fetched.message));
      }
    } finally {
      await giveBack(held);
    }
    const total = held.length + remaining;
    const end = offset + items.length;
    return { items, offset, total, nextOffset: end < total ? end : undefined };
  }

  /**
   * Publishes the selected dead letters of `<queue>.dead` to `<queue>` again, each confirmed by
   * the broker before its dead letter is removed. Under the same id (the default) the stored
   * state of that id is deleted first, so the old FAILURE no longer answers `get()`; with
   * `newId`, each goes under a new id. With `{ all: true }`, replays the messages there when it
   * began, each id once: a task dead-lettered again meanwhile stays for the next replay.
   */
  async replay(
    queue: string,
    selection: DeadLetterSelection,
    options: ReplayOptions = {},
  ): Promise<ReplayReport> {
    const replayed: Array<{ id: string | undefined; newId?: string }> = [];
    const keptAfterReplay: Array<string | undefined> = [];
    const expired: Array<string | undefined> = [];
    const notFound = await this.scan(queue, selection, async (fetched, id) => {
      const newId = options.newId ? randomUUID() : undefined;
      // Before the publish: once published, the new run may store its result at any moment.
      if (newId === undefined && id !== undefined && this.backend) await this.backend.forget(id);
      await this.transport.publishToQueue(queue, replayMessage(fetched.message, newId));
      const entry = newId === undefined ? { id } : { id, newId };
      replayed.push(entry);
      if (hasExpired(fetched.message)) expired.push(id);
      options.onReplayed?.(entry);
      try {
        await fetched.ack();
      } catch (error) {
        if (!(error instanceof ConnectionError)) throw error;
        keptAfterReplay.push(id);
      }
    });
    return { replayed, keptAfterReplay, expired, notFound };
  }

  /** Deletes the selected dead letters of `<queue>.dead` (every copy of a selected id). */
  async purge(
    queue: string,
    selection: DeadLetterSelection,
    options: PurgeOptions = {},
  ): Promise<PurgeReport> {
    let purged = 0;
    const notFound = await this.scan(
      queue,
      selection,
      async (fetched, id) => {
        await fetched.ack();
        purged += 1;
        options.onPurged?.(id);
      },
      { everyCopy: true },
    );
    return { purged, notFound };
  }

  /**
   * Reads `<queue>.dead` through once and hands each selected message to `act`, which settles
   * it; the others are held and given back at the end. Returns the asked-for ids not found.
   * With `all`, acts on at most as many messages as the queue held at the start, and on each id
   * once unless `everyCopy`, so messages dead-lettered again while it runs cannot keep it going.
   */
  private async scan(
    queue: string,
    selection: DeadLetterSelection,
    act: (fetched: FetchedMessage, id: string | undefined) => Promise<void>,
    { everyCopy = false }: { everyCopy?: boolean } = {},
  ): Promise<string[]> {
    const wanted = 'ids' in selection ? new Set(selection.ids) : undefined;
    if (wanted && wanted.size === 0) throw new ConfigError('dead letters: no ids were given');
    const found = new Set<string>();
    const held: FetchedMessage[] = [];
    let budget: number | undefined;
    try {
      for (;;) {
        if (budget === 0) break;
        const fetched = await this.fetch(queue);
        if (!fetched) break;
        budget ??= fetched.remaining + 1;
        const id = taskId(fetched.message);
        const selected = wanted
          ? id !== undefined && wanted.has(id) && (everyCopy || !found.has(id))
          : id === undefined || everyCopy || !found.has(id);
        if (!selected) {
          held.push(fetched);
          continue;
        }
        if (id !== undefined) found.add(id);
        if (!wanted) budget -= 1;
        held.push(fetched);
        await act(fetched, id);
        held.pop();
      }
    } finally {
      await giveBack(held);
    }
    return wanted ? [...wanted].filter((id) => !found.has(id)) : [];
  }

  /**
   * Takes the next message of `<queue>.dead`. A dead-letter queue that does not exist is a
   * wrong queue name, or one no worker has consumed yet (workers declare it): a ConfigError
   * that says so, rather than the broker's 404.
   */
  private async fetch(queue: string): Promise<FetchedMessage | undefined> {
    const dead = deadLetterQueueName(queue);
    try {
      return await this.transport.fetch(dead);
    } catch (error) {
      if (!(error instanceof UnroutableError)) throw error;
      throw new ConfigError(
        `queue '${queue}' has no dead-letter queue '${dead}': check the queue name (a worker ` +
          'consuming the queue declares it)',
      );
    }
  }
}

/**
 * Gives held messages back, the last read first, so each returns to where it was. A message
 * whose channel died is already back: its `requeue()` rejects, and that is fine.
 */
async function giveBack(held: FetchedMessage[]): Promise<void> {
  for (const fetched of held.reverse()) await fetched.requeue().catch(() => undefined);
}
