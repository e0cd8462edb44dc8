import type { ResultBackend } from '../backend/result-backend';
import type { ClassType } from '../task/task-options';
import type { QueueDeclaration, Transport } from '../transport/transport';

/** Options of {@link Conveyor}. */
export interface ConveyorOptions {
  /**
   * The broker.
   * @defaultValue a new in-memory transport (`MemoryTransport`)
   */
  broker?: Transport;
  /**
   * Where results are kept; `null` for none (then `get()` is unavailable).
   * @defaultValue a new in-memory backend (`MemoryResultBackend`)
   */
  backend?: ResultBackend | null;
  /** Task services (`@TaskService`) and task classes (`@Task`). */
  tasks?: ClassType[];
  /**
   * Queue of tasks that name none.
   * @defaultValue 'celery' (Celery's default queue)
   */
  defaultQueue?: string;
  /**
   * Declarations of queues that need more than a name (`maxPriority`, `queueType`). Queues not
   * listed are declared with their name alone.
   * @defaultValue []
   */
  queues?: QueueDeclaration[];
  /**
   * Default wait of `AsyncResult.get()`.
   * @defaultValue 60_000
   */
  getTimeoutMs?: number;
  /**
   * Store Celery's extended result fields (`name`, `args`, `kwargs`, `worker`, `retries`,
   * `queue`), as Celery's `result_extended` does.
   * @defaultValue false (Celery's default)
   */
  resultExtended?: boolean;
  /**
   * Send a Celery `task-sent` event for every task this app sends (Celery's
   * `task_send_sent_event`), so monitors see tasks before a worker takes them. Needs a transport
   * with the `exchanges` capability.
   * @defaultValue false
   */
  taskSentEvents?: boolean;
  /**
   * Largest message body `delay()` sends; a larger call is refused with a SerializationError.
   * Keep it at or under the workers' `maxBodyBytes`, which dead-letter anything larger.
   * @defaultValue 16 MiB ({@link DEFAULT_MAX_BODY_BYTES}, the workers' default too)
   */
  maxBodyBytes?: number;
  /**
   * Validate DTO arguments (parameters typed with a class) with class-validator's decorators, as
   * NestJS's ValidationPipe does: `delay()` refuses an invalid one with a SerializationError, a
   * worker stores a `ValueError` and dead-letters the message. Needs `class-validator` installed.
   * @defaultValue false
   */
  validate?: boolean;
}
