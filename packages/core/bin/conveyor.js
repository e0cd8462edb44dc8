#!/usr/bin/env node
// The `conveyor` command. Committed rather than built, so npm links it as soon as the package is
// installed (in this repository, by `npm ci`); it loads the compiled CLI from dist/.
'use strict';
let cli;
try {
  cli = require('../dist/cli/main.js');
} catch (error) {
  if (
    error &&
    error.code === 'MODULE_NOT_FOUND' &&
    String(error.message).includes('dist/cli/main.js')
  ) {
    console.error(
      'conveyor: the CLI is not built yet: run `npm run build` in the repository first',
    );
    process.exit(70);
  }
  throw error;
}
void cli.main(process.argv);
