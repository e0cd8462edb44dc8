import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '../../..');

/** Runs `code` in a plain Node process: no Jest module mapping, only the package's exports. */
function node(code: string): string {
  return execFileSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8' }).trim();
}

describe('the published entry points (built output, as another project imports them)', () => {
  it('exports @conveyor/core/testing for transport and backend authors, worker semantics included', () => {
    const keys = node(
      "console.log(Object.keys(require('@conveyor/core/testing')).sort().join(','))",
    ).split(',');
    expect(keys).toEqual(
      expect.arrayContaining([
        'describeBackendConformance',
        'describeTransportConformance',
        'describeWorkerSemantics',
        'waitFor',
      ]),
    );
  });

  it('gives the testing kit the same core classes as the main entry point', () => {
    // One copy of core: a conformance suite's instanceof checks see the user's classes.
    expect(
      node(
        "require('@conveyor/core/testing'); require('@conveyor/core'); console.log(Object.keys(require.cache).filter((k) => k.endsWith('dist/errors/errors.js')).length)",
      ),
    ).toBe('1');
  });
});

describe('@conveyor/core/plugin, as an outside transport imports it', () => {
  let project: string;

  beforeAll(() => {
    // A project of its own, outside this repository, with @conveyor/core installed (linked).
    project = mkdtempSync(join(tmpdir(), 'conveyor-plugin-'));
    mkdirSync(join(project, 'node_modules', '@conveyor'), { recursive: true });
    symlinkSync(join(root, 'packages/core'), join(project, 'node_modules/@conveyor/core'), 'dir');
    symlinkSync(
      join(root, 'node_modules/reflect-metadata'),
      join(project, 'node_modules/reflect-metadata'),
      'dir',
    );
    symlinkSync(
      join(root, 'node_modules/class-transformer'),
      join(project, 'node_modules/class-transformer'),
      'dir',
    );
    writeFileSync(join(project, 'transport.ts'), OUTSIDE_TRANSPORT);
  });

  afterAll(() => rmSync(project, { recursive: true, force: true }));

  it('type-checks against the published typings (typesVersions, no path mapping)', () => {
    const tsc = require.resolve('typescript/bin/tsc');
    // Throws, with tsc's diagnostics, if the kit's typings cannot be found or do not fit.
    execFileSync(
      process.execPath,
      [
        tsc,
        '--strict',
        '--noEmit',
        '--module',
        'commonjs',
        '--moduleResolution',
        'node10',
        '--target',
        'es2022',
        '--types',
        'node',
        '--typeRoots',
        join(root, 'node_modules/@types'),
        'transport.ts',
      ],
      { cwd: project, encoding: 'utf8' },
    );
  });

  it('runs the kit: option checks, redaction, codecs, and the same error classes as core', () => {
    const out = execFileSync(
      process.execPath,
      [
        '-e',
        `const kit = require('@conveyor/core/plugin');
         const core = require('@conveyor/core');
         const check = new kit.OptionChecker('OutsideTransport');
         let refused;
         try { check.number('timeoutMs', -1, { min: 1 }); } catch (e) { refused = e; }
         const message = kit.encodeTaskMessage({
           headers: { lang: 'py', task: 't', id: 'i', root_id: 'i', parent_id: null, group: null },
           properties: { correlationId: 'i', contentType: kit.JSON_CONTENT_TYPE, contentEncoding: kit.UTF8 },
           args: [1], kwargs: {}, embed: kit.emptyEmbed(),
         });
         console.log(JSON.stringify({
           refused: refused instanceof core.ConfigError && refused.message,
           sameErrors: kit.ConnectionError === core.ConnectionError,
           url: kit.redactUrl('amqp://user:pw@host:5672/v'),
           decoded: kit.decodeTaskMessage(message).args,
         }));`,
      ],
      { cwd: project, encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual({
      refused: 'OutsideTransport: `timeoutMs` must be a number from 1 (got -1)',
      sameErrors: true,
      url: 'amqp://user:***@host:5672/v',
      decoded: [1],
    });
  });

  it('leaves @internal members out of the main typings (stripInternal)', () => {
    const typings = readFileSync(join(root, 'packages/core/dist/app/conveyor.d.ts'), 'utf8');
    expect(typings).toContain('class Conveyor');
    expect(typings).not.toContain('sendCall');
    expect(typings).not.toContain('ensureQueue');
  });
});

/** A transport's first lines, as a plugin author outside this repository writes them. */
const OUTSIDE_TRANSPORT = `
import {
  OptionChecker,
  Redactor,
  bounded,
  BackgroundErrors,
  type Transport,
  type TransportMessage,
  type PublishOptions,
} from '@conveyor/core/plugin';

export interface OutsideOptions {
  url?: string;
  timeoutMs?: number;
}

export abstract class OutsideTransport implements Partial<Transport> {
  private readonly timeoutMs: number;
  private readonly redactor: Redactor;
  private readonly errors = new BackgroundErrors('outside');

  constructor(options: OutsideOptions = {}) {
    const check = new OptionChecker('OutsideTransport');
    this.timeoutMs = check.optionalNumber('timeoutMs', options.timeoutMs, 1_000, { min: 1 });
    this.redactor = new Redactor([options.url]);
  }

  async publish(message: TransportMessage, options: PublishOptions): Promise<void> {
    try {
      await bounded(this.send(message, options.queue), this.timeoutMs, 'outside: publish');
    } catch (error) {
      this.errors.report(new Error(this.redactor.redact(String(error))));
      throw error;
    }
  }

  protected abstract send(message: TransportMessage, queue: string): Promise<void>;
}
`;
