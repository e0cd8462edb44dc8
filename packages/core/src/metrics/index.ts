/**
 * @conveyor/core/metrics: Prometheus metrics of a worker, on prom-client (an optional peer
 * dependency: install it to use this entry point; the rest of core never loads it).
 */
export { WorkerMetrics, type WorkerMetricsOptions } from './worker-metrics';
export { serveMetrics, type MetricsServer, type MetricsServerOptions } from './metrics-server';
