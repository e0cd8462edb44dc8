import 'reflect-metadata';
import { Task, TaskService, taskContext } from '@conveyor/core';

/** A task class: its run() is the task `math.add`. */
@Task({ name: 'math.add' })
export class Add {
  // On run() too, so TypeScript records its parameter types: the worker refuses `("a", 2)`.
  @Task()
  run(a: number, b: number): number {
    return a + b;
  }
}

/** What the attendees task reports back: plain data, rebuilt as this class by `returns`. */
export class AttendeeUpdate {
  eventId!: string;
  notified!: number;
  updatedAt!: string;
}

/** The worker's data access. Web and worker nodes share ids, never records. */
export interface AttendeeRepository {
  attendeesOf(eventId: string): Promise<string[]>;
}

/** An in-memory stand-in for the worker's database. */
export class InMemoryAttendees implements AttendeeRepository {
  private readonly events = new Map([
    ['evt-42', ['ada@example.com', 'grace@example.com', 'linus@example.com']],
  ]);

  async attendeesOf(eventId: string): Promise<string[]> {
    return this.events.get(eventId) ?? [];
  }
}

/**
 * A task service: each @Task method is a task named `attendees.<method>`, on the `attendees`
 * queue. It takes an event id, not the event: the worker loads fresh data itself.
 */
@TaskService({ name: 'attendees', queue: 'attendees' })
export class AttendeeService {
  constructor(private readonly repository: AttendeeRepository) {}

  @Task({ returns: () => AttendeeUpdate, trackStarted: true })
  async updateAttendees(eventId: string): Promise<AttendeeUpdate> {
    const attendees = await this.repository.attendeesOf(eventId);
    return { eventId, notified: attendees.length, updatedAt: `by ${taskContext().hostname}` };
  }
}
