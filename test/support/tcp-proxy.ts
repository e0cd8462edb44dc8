import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/** The ports of the services' URL schemes, for a URL that names none. */
const DEFAULT_PORTS: Record<string, number> = {
  'amqp:': 5672,
  'redis:': 6379,
  'postgres:': 5432,
  'postgresql:': 5432,
};

/**
 * A TCP proxy for fault tests: clients connect to `url`'s port here and are piped to the real
 * server. `cut()` destroys every open connection (the server stays up), `block()` refuses new
 * ones until `unblock()`, `holdReplies()` keeps what the server sends from the clients until
 * `releaseReplies()`. Shared services are never stopped to test a failure; this is cut instead.
 */
export class TcpProxy {
  /** A started proxy to the server `url` names: its host, and its port or its scheme's default. */
  static async to(url: string): Promise<TcpProxy> {
    const target = new URL(url);
    const port = Number(target.port) || DEFAULT_PORTS[target.protocol];
    if (port === undefined) throw new Error(`no port in ${url}, and none known for its scheme`);
    const proxy = new TcpProxy(target.hostname, port);
    await proxy.start();
    return proxy;
  }

  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private blocked = false;
  private held: Array<{ client: Socket; chunk: Buffer }> | undefined;
  /** Clients that sent bytes the server has not answered yet. */
  private readonly awaitingReply = new Set<Socket>();
  /** Connections accepted so far. */
  connections = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Starts listening on a free loopback port and returns it. */
  async start(): Promise<number> {
    this.server = createServer((client) => {
      if (this.blocked) {
        client.destroy();
        return;
      }
      this.connections += 1;
      const upstream = connect(this.targetPort, this.targetHost);
      upstream.setNoDelay(true);
      client.setNoDelay(true);
      this.track(client);
      this.track(upstream);
      client.pipe(upstream);
      client.on('data', () => this.awaitingReply.add(client));
      upstream.on('data', (chunk: Buffer) => {
        // Counted as answered once the server's bytes arrive here, held or not: a held reply
        // still leaves the client waiting, which is what `busy` reports.
        if (!this.held) this.awaitingReply.delete(client);
        if (this.held) this.held.push({ client, chunk });
        else client.write(chunk);
      });
      const close = (): void => {
        this.awaitingReply.delete(client);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  /**
   * Open connections whose client is waiting for the server: it sent a request (a query, a
   * command) and has had no reply since, or its reply is held by {@link holdReplies}.
   */
  get busy(): number {
    return this.awaitingReply.size;
  }

  /** Destroys every connection through the proxy; returns how many of them were {@link busy}. */
  cut(): number {
    const busy = this.awaitingReply.size;
    this.awaitingReply.clear();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    return busy;
  }

  /** Refuses new connections (and cuts the open ones) until {@link unblock}. */
  block(): void {
    this.blocked = true;
    this.cut();
  }

  unblock(): void {
    this.blocked = false;
  }

  /** From now on, bytes from the server wait here instead of reaching the clients. */
  holdReplies(): void {
    this.held ??= [];
  }

  /** Delivers the held bytes, in order, and forwards again. */
  releaseReplies(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const { client, chunk } of held) {
      if (client.destroyed) continue;
      this.awaitingReply.delete(client);
      client.write(chunk);
    }
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }

  /** `url` with its host and port replaced by this proxy's. */
  rewrite(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }
}
