import { ClusterState, type CeleryEvent } from '@conveyor/core';

let clock = 0;
function event(type: string, fields: Partial<CeleryEvent> & Record<string, unknown>): CeleryEvent {
  clock += 1;
  return {
    type,
    hostname: 'w1@host',
    timestamp: 1_000,
    utcoffset: 0,
    pid: 1,
    clock,
    local_received: 1_000,
    ...fields,
  };
}

describe('ClusterState', () => {
  it('keeps a worker alive while heartbeats come within twice their frequency', () => {
    let now = 1_000;
    const state = new ClusterState({ now: () => now });
    state.event(event('worker-online', { freq: 2, local_received: 1_000 }));
    expect(state.isAlive('w1@host')).toBe(true);
    now = 1_003.9;
    expect(state.isAlive('w1@host')).toBe(true);
    state.event(
      event('worker-heartbeat', { freq: 2, active: 3, processed: 7, local_received: 1_003.9 }),
    );
    now = 1_007.8;
    expect(state.isAlive('w1@host')).toBe(true);
    expect(state.workers.get('w1@host')).toMatchObject({ active: 3, processed: 7, freq: 2 });
    now = 1_008;
    expect(state.isAlive('w1@host')).toBe(false);
    expect(state.aliveWorkers()).toEqual([]);
  });

  it('takes a worker offline at once on worker-offline', () => {
    const state = new ClusterState({ now: () => 1_000 });
    state.event(event('worker-online', { freq: 2 }));
    state.event(event('worker-offline', { freq: 2 }));
    expect(state.isAlive('w1@host')).toBe(false);
    expect(state.workers.get('w1@host')?.offline).toBe(true);
  });

  it('keeps a task SUCCESS when its task-received and task-started arrive late, taking only their fields', () => {
    const state = new ClusterState({ now: () => 1_000 });
    state.event(
      event('task-succeeded', { uuid: 't1', result: '4', runtime: 0.01, timestamp: 1_002 }),
    );
    state.event(event('task-started', { uuid: 't1', timestamp: 1_001 }));
    state.event(
      event('task-received', { uuid: 't1', name: 'add', args: '(2, 2)', timestamp: 1_000 }),
    );
    const task = state.tasks.get('t1')!;
    expect(task).toMatchObject({
      state: 'SUCCESS',
      name: 'add',
      args: '(2, 2)',
      result: '4',
      worker: 'w1@host',
      received: 1_000,
      started: 1_001,
      succeeded: 1_002,
    });
    expect(state.tasksInState('SUCCESS').map((t) => t.uuid)).toEqual(['t1']);
  });

  it('records a failure with its exception and traceback, and the client of task-sent', () => {
    const state = new ClusterState();
    state.event(event('task-sent', { uuid: 't2', hostname: 'web@host', name: 'fail' }));
    state.event(event('task-received', { uuid: 't2', name: 'fail' }));
    state.event(
      event('task-failed', { uuid: 't2', exception: "ValueError('boom')", traceback: 'tb' }),
    );
    expect(state.tasks.get('t2')).toMatchObject({
      state: 'FAILURE',
      client: 'web@host',
      worker: 'w1@host',
      exception: "ValueError('boom')",
      traceback: 'tb',
    });
  });

  it('forgets the least recently updated tasks and workers past its bounds', () => {
    const state = new ClusterState({ maxTasks: 100, maxWorkers: 3 });
    for (let i = 0; i < 1_000; i += 1) {
      state.event(event('task-received', { uuid: `t${i}`, hostname: `w${i % 5}@host` }));
    }
    expect(state.tasks.size).toBe(100);
    expect(state.tasks.has('t999')).toBe(true);
    expect(state.tasks.has('t0')).toBe(false);
    expect(state.workers.size).toBe(3);
  });
});
