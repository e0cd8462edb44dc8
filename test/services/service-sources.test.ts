import { createServer, type Server } from 'node:net';
import { chooseSource, SERVICES, tcpAnswers, type ServiceProbes } from '../support/service-sources';

const redis = SERVICES.find((spec) => spec.env === 'REDIS_URL')!;

/** Probes that answer as told and record what was asked. */
function probes(answers: { env?: string; local: boolean; docker: boolean }) {
  const asked: string[] = [];
  const fake: ServiceProbes = {
    env: { REDIS_URL: answers.env },
    answers: async (url) => {
      asked.push(`port ${url}`);
      return answers.local;
    },
    dockerAnswers: async () => {
      asked.push('docker');
      return answers.docker;
    },
  };
  return { fake, asked };
}

describe('where the suite finds its services', () => {
  it('takes a URL from the environment first, without probing anything', async () => {
    const { fake, asked } = probes({ env: 'redis://elsewhere:6390', local: true, docker: true });
    await expect(chooseSource(redis, fake)).resolves.toBe('environment');
    expect(asked).toEqual([]);
  });

  it('uses the local default port when the service answers there, without asking Docker', async () => {
    const { fake, asked } = probes({ local: true, docker: true });
    await expect(chooseSource(redis, fake)).resolves.toBe('local');
    expect(asked).toEqual(['port redis://127.0.0.1:6379']);
  });

  it('starts a container only when nothing answers locally and a Docker engine does', async () => {
    const { fake, asked } = probes({ local: false, docker: true });
    await expect(chooseSource(redis, fake)).resolves.toBe('container');
    expect(asked).toEqual(['port redis://127.0.0.1:6379', 'docker']);
  });

  it('has no source when neither the port nor Docker answers', async () => {
    const { fake } = probes({ local: false, docker: false });
    await expect(chooseSource(redis, fake)).resolves.toBeUndefined();
  });

  describe('the port probe', () => {
    let server: Server;
    let port: number;

    beforeAll(async () => {
      server = createServer((socket) => socket.end());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('says yes where something listens and no where nothing does', async () => {
      await expect(tcpAnswers(`redis://127.0.0.1:${port}`)).resolves.toBe(true);
      server.close();
      await expect(tcpAnswers(`redis://127.0.0.1:${port}`)).resolves.toBe(false);
    });
  });
});
