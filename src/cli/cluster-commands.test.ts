import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterStatus } from '../coord/cluster/types.js';
import { freePort } from '../testing/free-port.js';
import { clusterStatus, formatAge } from './cluster-commands.js';

const NOW = 1_700_000_100_000;
const STATUS: ClusterStatus = {
  nowMs: NOW,
  nodes: [
    {
      nodeId: 3,
      address: '127.0.0.1:40003',
      metricsAddress: '127.0.0.1:9103',
      slotsTotal: 4,
      slotsUsed: 2,
      tasksByType: { 'copy-segment': 2, 'index-build': 0 },
      lastHeartbeatMs: NOW - 1_200,
      state: 'Healthy',
    },
    {
      nodeId: 12,
      address: '127.0.0.1:40012',
      metricsAddress: '',
      slotsTotal: 2,
      slotsUsed: 0,
      tasksByType: {},
      lastHeartbeatMs: NOW - 95_000,
      state: 'Lost',
    },
  ],
  jobs: [{ jobId: '4711', kind: 'restore', state: 'Executing', progress: 42.4, reason: 'waiting for a data node' }],
};

function sink() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, sink: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A tiny HTTP server answering GET /cluster with `status` and `body`. */
async function serve(status: number, body: string): Promise<string> {
  const server = createServer((req, res) => {
    if (req.url !== '/cluster') {
      res.writeHead(404);
      res.end('not found');
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('quiver cluster status', () => {
  it('prints the nodes and the jobs as tables, ages on the server clock', async () => {
    const address = await serve(200, JSON.stringify(STATUS));
    const s = sink();
    expect(await clusterStatus({ metricsAddress: address }, s.sink)).toBe(0);
    expect(s.err).toEqual([]);
    expect(s.out).toEqual([
      'NODE  ADDRESS          SLOTS  TASKS           HEARTBEAT  STATE',
      '3     127.0.0.1:40003  2/4    copy-segment=2  1.2s ago   Healthy',
      '12    127.0.0.1:40012  0/2    -               95s ago    Lost',
      '',
      'JOB   KIND     STATE      PROGRESS  REASON',
      '4711  restore  Executing  42%       waiting for a data node',
    ]);
  });

  it('says so when there are no nodes and no jobs', async () => {
    const address = await serve(200, JSON.stringify({ nowMs: NOW, nodes: [], jobs: [] }));
    const s = sink();
    expect(await clusterStatus({ metricsAddress: address }, s.sink)).toBe(0);
    expect(s.out).toEqual(['data nodes: none registered', '', 'jobs in flight: none']);
  });

  it('--json prints the status as JSON', async () => {
    const address = await serve(200, JSON.stringify(STATUS));
    const s = sink();
    expect(await clusterStatus({ metricsAddress: address, json: true }, s.sink)).toBe(0);
    expect(JSON.parse(s.out.join('\n'))).toEqual(STATUS);
  });

  it('an unreachable server is one line naming the address, exit 1', async () => {
    const port = await freePort();
    const s = sink();
    expect(await clusterStatus({ metricsAddress: `127.0.0.1:${port}` }, s.sink)).toBe(1);
    expect(s.out).toEqual([]);
    expect(s.err).toHaveLength(1);
    expect(s.err[0]).toMatch(new RegExp(`^error: cannot reach Quiver at http://127\\.0\\.0\\.1:${port}/cluster: ECONNREFUSED`));
  });

  it('a wrong port (404) or a body that is not a status fails with one line', async () => {
    const notFound = await serve(404, 'not found');
    const s1 = sink();
    expect(await clusterStatus({ metricsAddress: notFound }, s1.sink)).toBe(1);
    expect(s1.err[0]).toMatch(/answered HTTP 404: not found \(not the metrics port/);
    const garbage = await serve(200, JSON.stringify({ nodes: [{ nodeId: [1] }] }));
    const s2 = sink();
    expect(await clusterStatus({ metricsAddress: garbage }, s2.sink)).toBe(1);
    expect(s2.err[0]).toMatch(/something other than a cluster status: node 0: "nodeId" is not a number or string/);
  });

  it('formats ages', () => {
    expect(formatAge(-5)).toBe('0.0s');
    expect(formatAge(9_949)).toBe('9.9s');
    expect(formatAge(61_000)).toBe('61s');
    expect(formatAge(600_000)).toBe('10m');
    expect(formatAge(3 * 3_600_000)).toBe('3h');
  });
});

describe('parseClusterStatus', () => {
  it('takes string node ids, a node without a heartbeat, any state name, and no server clock', async () => {
    const address = await serve(
      200,
      JSON.stringify({
        nodes: [
          {
            nodeId: 'datanode-7',
            address: 'h:1',
            metricsAddress: 'h:2',
            slotsTotal: 2,
            slotsUsed: 1,
            tasksByType: { copy: 1 },
            lastHeartbeatMs: null,
            state: 'unreachable',
          },
        ],
        jobs: [],
      }),
    );
    const s = sink();
    expect(await clusterStatus({ metricsAddress: address }, s.sink)).toBe(0);
    expect(s.out[1]).toBe('datanode-7  h:1      1/2    copy=1  -          unreachable');
  });
});
