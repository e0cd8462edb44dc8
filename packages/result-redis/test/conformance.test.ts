import { describeBackendConformance } from '@conveyor/core/testing';
import { RedisTestKit } from '../../../test/support/redis-backend';

let kit: RedisTestKit;

describeBackendConformance('redis', () => {
  kit = new RedisTestKit();
  return { create: () => kit.backend(), cleanup: () => kit.cleanup() };
});
