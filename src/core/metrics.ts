import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * Metrics survive component restarts (a reload rebuilds components, but the registry stays): a metric is created
 * once per registry and reused. Components label by instance and remove their label values on stop.
 */
type MetricKind = 'counter' | 'gauge' | 'histogram';
type Config<L extends string> = { name: string; help: string; labelNames?: readonly L[]; buckets?: number[] };

function getOrCreate<L extends string, M>(registry: Registry, config: Config<L>, make: () => M, kind: MetricKind): M {
  if (!config.name.startsWith('lineguard_')) throw new Error(`metric ${config.name} must start with lineguard_`);
  const existing = registry.getSingleMetric(config.name);
  if (existing) {
    const type = (existing as unknown as { type?: string }).type;
    if (type && type !== kind) throw new Error(`metric ${config.name} already registered as ${type}`);
    return existing as unknown as M;
  }
  return make();
}

export function counter<L extends string>(registry: Registry, config: Config<L>): Counter<L> {
  return getOrCreate(registry, config, () => new Counter<L>({ ...config, labelNames: config.labelNames ?? [], registers: [registry] }), 'counter');
}

export function gauge<L extends string>(registry: Registry, config: Config<L>): Gauge<L> {
  return getOrCreate(registry, config, () => new Gauge<L>({ ...config, labelNames: config.labelNames ?? [], registers: [registry] }), 'gauge');
}

export function histogram<L extends string>(registry: Registry, config: Config<L>): Histogram<L> {
  return getOrCreate(
    registry,
    config,
    () => new Histogram<L>({ ...config, labelNames: config.labelNames ?? [], registers: [registry] }),
    'histogram',
  );
}
