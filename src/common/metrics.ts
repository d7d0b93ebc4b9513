import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one server instance (own registry: several servers can share a process in tests). */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'status'>;
  readonly latency: Histogram<'method'>;
  readonly rowsInserted: Counter;
  readonly rowsDeleted: Counter;
  readonly segments: Gauge<'state'>;
  readonly writeFailures: Counter<'target'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'quiver_requests_total',
      help: 'RPCs served, by method and status',
      labelNames: ['method', 'status'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'quiver_request_duration_seconds',
      help: 'RPC latency by method',
      labelNames: ['method'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.rowsInserted = new Counter({ name: 'quiver_rows_inserted_total', help: 'Rows inserted or upserted', registers: [this.registry] });
    this.rowsDeleted = new Counter({ name: 'quiver_rows_deleted_total', help: 'Primary keys deleted', registers: [this.registry] });
    this.segments = new Gauge({ name: 'quiver_segments', help: 'Segments by state', labelNames: ['state'], registers: [this.registry] });
    this.writeFailures = new Counter({
      name: 'quiver_write_failures_total',
      help: 'Writes that failed with an I/O error (disk full, EIO), by store: wal, meta, objects',
      labelNames: ['target'],
      registers: [this.registry],
    });
  }
}
