import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * An in-process MQTT 3.1.1 broker (aedes) on a free localhost port, so the demo needs nothing installed.
 * Plants use a real broker (Mosquitto, EMQX, HiveMQ...): aedes here only stands in for one.
 */
export class EmbeddedBroker {
  #server: Server | undefined;
  #broker: import('aedes').Aedes | undefined;

  async start(port = 0): Promise<string> {
    const { Aedes } = await import('aedes');
    const broker = await Aedes.createBroker();
    const server = createServer(broker.handle);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#broker = broker;
    this.#server = server;
    return this.url;
  }

  get url(): string {
    const address = this.#server?.address() as AddressInfo | null;
    if (!address) throw new Error('broker not started');
    return `mqtt://127.0.0.1:${address.port}`;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    const broker = this.#broker;
    this.#server = undefined;
    this.#broker = undefined;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    if (server) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}
