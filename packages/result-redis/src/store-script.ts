import { createHash } from 'node:crypto';
import type { RedisClient } from './redis-client';

/**
 * Check-and-set of a result, atomic in Redis: a meta is written (and published) only if the
 * stored one is not already final. A GET followed by a SET from the client would let a
 * redelivered task's late STARTED land between the two and hide the result.
 *
 * KEYS[1]: the result key, which is also the channel (Celery's Redis backend subscribes to it).
 * ARGV[1]: the meta as JSON. ARGV[2]: expiry in milliseconds, 0 for none.
 * Returns 1 when written and published, 0 when the stored meta was final.
 *
 * The stored meta is decoded with cjson rather than matched as text, because Celery writes it
 * with Python's separators (`"status": "SUCCESS"`) and Conveyor without spaces. A value that is
 * not a JSON object is not a result and is overwritten.
 */
const STORE_LUA = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, meta = pcall(cjson.decode, current)
  if ok and type(meta) == 'table' then
    local status = meta['status']
    if status == 'SUCCESS' or status == 'FAILURE' or status == 'REVOKED' then
      return 0
    end
  end
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
`;

const STORE_SHA = createHash('sha1').update(STORE_LUA).digest('hex');

/**
 * Runs the store script by its SHA1 and falls back on sending its text when Redis does not
 * know it (NOSCRIPT: after a restart, a failover or SCRIPT FLUSH); EVAL also caches it again.
 * The user's client is not modified (no `defineCommand`), so a shared client stays as it was.
 *
 * @returns true when the meta was written and published, false when a final one was kept.
 */
export async function runStoreScript(
  client: RedisClient,
  key: string,
  json: string,
  expiresMs: number,
): Promise<boolean> {
  const ttl = String(expiresMs);
  let reply: unknown;
  try {
    reply = await client.evalsha(STORE_SHA, 1, key, json, ttl);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    reply = await client.eval(STORE_LUA, 1, key, json, ttl);
  }
  // With `stringNumbers` a user's client replies "1" rather than 1.
  return Number(reply) === 1;
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}
