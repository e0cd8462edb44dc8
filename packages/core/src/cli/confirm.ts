import { createInterface } from 'node:readline';
import { ConfigError } from '../errors';

/** Where a command asks for confirmation; the process's terminal unless a test gives its own. */
export interface PromptIo {
  input: NodeJS.ReadableStream;
  /** Where the question is written. */
  output: { write(text: string): unknown };
  /** True when a person can answer (stdin is a terminal). */
  interactive: boolean;
}

/**
 * Asks `question` and resolves true on `y` or `yes` (any case), false on anything else or no
 * answer. Refuses outright without a terminal, with a `ConfigError` saying `refusal`: nobody
 * could answer, and deleting without an answer is not something to do by default.
 */
export async function confirm(question: string, io: PromptIo, refusal: string): Promise<boolean> {
  if (!io.interactive) throw new ConfigError(refusal);
  io.output.write(question);
  const lines = createInterface({ input: io.input, terminal: false });
  try {
    for await (const line of lines) return /^y(es)?$/i.test(line.trim());
    return false;
  } finally {
    lines.close();
  }
}
