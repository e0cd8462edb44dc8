/**
 * Whether an AMQP topic binding key matches a routing key: words split on `.`, `*` stands for
 * exactly one word and `#` for zero or more.
 */
export function matchesTopic(bindingKey: string, routingKey: string): boolean {
  return matchWords(bindingKey.split('.'), 0, routingKey.split('.'), 0);
}

function matchWords(pattern: string[], p: number, words: string[], w: number): boolean {
  if (p === pattern.length) return w === words.length;
  const word = pattern[p];
  if (word === '#') {
    for (let skip = w; skip <= words.length; skip += 1) {
      if (matchWords(pattern, p + 1, words, skip)) return true;
    }
    return false;
  }
  if (w === words.length) return false;
  return (word === '*' || word === words[w]) && matchWords(pattern, p + 1, words, w + 1);
}
