/** Sparkplug B topic namespace (spec §4.1): `spBv1.0/<group>/<message type>/<edge node>[/<device>]`. */

export const SPARKPLUG_NAMESPACE = 'spBv1.0';

export type SparkplugMessageType = 'NBIRTH' | 'NDEATH' | 'DBIRTH' | 'DDEATH' | 'NDATA' | 'DDATA' | 'NCMD' | 'DCMD';

export interface SparkplugTopic {
  group: string;
  type: SparkplugMessageType;
  node: string;
  device?: string;
}

const NODE_TYPES = new Set(['NBIRTH', 'NDEATH', 'NDATA', 'NCMD']);
const DEVICE_TYPES = new Set(['DBIRTH', 'DDEATH', 'DDATA', 'DCMD']);

/**
 * Parses a Sparkplug topic. Returns `'state'` for host application STATE messages (`spBv1.0/STATE/<host>`),
 * which carry no device data, and undefined for anything that is not a valid Sparkplug B topic.
 */
export function parseSparkplugTopic(topic: string): SparkplugTopic | 'state' | undefined {
  const levels = topic.split('/');
  if (levels[0] !== SPARKPLUG_NAMESPACE) return undefined;
  if (levels[1] === 'STATE' && levels.length === 3) return 'state';
  const [, group, type, node, device] = levels;
  if (!group || !type || !node) return undefined;
  if (NODE_TYPES.has(type) && levels.length === 4) return { group, type: type as SparkplugMessageType, node };
  if (DEVICE_TYPES.has(type) && levels.length === 5 && device) return { group, type: type as SparkplugMessageType, node, device };
  return undefined;
}

/** The topic of commands to an edge node. */
export function nodeCommandTopic(group: string, node: string): string {
  return `${SPARKPLUG_NAMESPACE}/${group}/NCMD/${node}`;
}
