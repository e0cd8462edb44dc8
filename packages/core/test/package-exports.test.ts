import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '../../..');

/** Runs `code` in a plain Node process: no Jest module mapping, only the package's exports. */
function node(code: string): string {
  return execFileSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8' }).trim();
}

describe('the published entry points (built output, as another project imports them)', () => {
  it('exports @conveyor/core/testing for transport and backend authors', () => {
    const keys = node(
      "console.log(Object.keys(require('@conveyor/core/testing')).sort().join(','))",
    ).split(',');
    expect(keys).toEqual(
      expect.arrayContaining([
        'describeBackendConformance',
        'describeTransportConformance',
        'waitFor',
      ]),
    );
  });

  it('gives the testing kit the same core classes as the main entry point', () => {
    // One copy of core: a conformance suite's instanceof checks see the user's classes.
    expect(
      node(
        "const t = require.resolve('@conveyor/core/testing'); const c = require.resolve('@conveyor/core'); require(t); console.log(Object.keys(require.cache).filter((k) => k.endsWith('dist/index.js') && k.includes('core')).length, c.endsWith('dist/index.js'))",
      ),
    ).toBe('1 true');
  });
});
