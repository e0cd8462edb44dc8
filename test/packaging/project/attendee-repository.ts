// The "your own data access" module the README's app imports: a stand-in with a little latency.
export class AttendeeRepository {
  constructor(readonly databaseUrl: string | undefined) {}

  async attendeesOf(eventId: string): Promise<string[]> {
    await new Promise((resolve) => setTimeout(resolve, 30));
    return ['ada', 'grace', 'linus'].map((name) => `${name}+${eventId}@example.com`);
  }
}
