import { describeBackendConformance } from '@conveyor/core/testing';
import { RedisTestKit } from './redis-test-kit';

let kit: RedisTestKit;

describeBackendConformance('redis', () => {
  kit = new RedisTestKit();
  return { create: () => kit.backend(), cleanup: () => kit.cleanup() };
});
