export function greeting(name: string): string {
  return `hello from an ES module, ${name}`;
}
