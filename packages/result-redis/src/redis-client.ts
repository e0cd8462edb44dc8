import type { Cluster, Redis } from 'ioredis';

/**
 * What the backend talks to: a single-node or Sentinel-managed `Redis`, or a `Cluster`. Both
 * offer the commands used here with the same signatures.
 * @internal
 */
export type RedisClient = Redis | Cluster;
