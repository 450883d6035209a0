import net from 'node:net';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  blackholed: boolean;
}

/**
 * A loopback TCP proxy that can turn the connections it carries into a black hole: sockets stay open but no byte
 * gets through, which is what a half-open connection after a network cut looks like to both ends.
 */
export class TcpProxy {
  readonly #server: net.Server;
  readonly #pairs: Set<Pair>;

  private constructor(server: net.Server, pairs: Set<Pair>) {
    this.#server = server;
    this.#pairs = pairs;
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const pairs = new Set<Pair>();
    const server = net.createServer((client) => {
      const upstream = net.connect(targetPort, '127.0.0.1');
      const pair = { client, upstream, blackholed: false };
      pairs.add(pair);
      client.on('data', (d) => {
        if (!pair.blackholed) upstream.write(d);
      });
      upstream.on('data', (d) => {
        if (!pair.blackholed) client.write(d);
      });
      const close = (): void => {
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', close).on('error', close);
      upstream.on('close', close).on('error', close);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new TcpProxy(server, pairs);
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  get connections(): number {
    return this.#pairs.size;
  }

  /** Silences every connection open now (new connections still pass). */
  blackholeExisting(): void {
    for (const pair of this.#pairs) pair.blackholed = true;
  }

  async close(): Promise<void> {
    for (const pair of this.#pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
