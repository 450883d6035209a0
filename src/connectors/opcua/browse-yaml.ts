import { stringify } from 'yaml';
import type { OpcuaServerConfig, SecurityModeName, SecurityPolicyName } from './config.js';
import type { BrowsedVariable } from './browse.js';

export interface ServerEntryOptions {
  name: string;
  endpoint: string;
  mode: SecurityModeName;
  policy: SecurityPolicyName;
  auth: OpcuaServerConfig['auth'];
  /** For username auth: the environment variable the config should read the password from. */
  passwordEnv?: string;
}

/**
 * Renders browsed variables as one `opcua:` list item with its `tags:` block, ready to paste under `opcua:` in the
 * config. Node ids use the `nsu=` form; variables the gateway cannot read as they are (arrays, structures) are
 * listed as comments that say what to add.
 */
export function renderServerEntry(entry: ServerEntryOptions, variables: readonly BrowsedVariable[], header: string[]): string {
  const lines: string[] = header.map((h) => `# ${h}`);
  lines.push(`- name: ${scalar(entry.name)}`);
  lines.push(`  endpoint: ${scalar(entry.endpoint)}`);
  lines.push('  security:');
  lines.push(`    mode: ${entry.mode}`);
  lines.push(`    policy: ${entry.policy}`);
  if (entry.auth.type === 'username') {
    lines.push('  auth:');
    lines.push('    type: username');
    lines.push(`    username: ${scalar(entry.auth.username ?? '')}`);
    lines.push(`    password: ${scalar(`\${env:${entry.passwordEnv ?? 'OPCUA_PASSWORD'}}`)}`);
  } else if (entry.auth.type === 'certificate') {
    lines.push('  auth:');
    lines.push('    type: certificate');
    lines.push(`    certificateFile: ${scalar(entry.auth.certificateFile ?? '')}`);
    lines.push(`    privateKeyFile: ${scalar(entry.auth.privateKeyFile ?? '')}`);
  }
  const supported = variables.filter((v) => v.supported);
  if (supported.length === 0) {
    lines.push('  # no readable scalar variables were found under this root: add tags by hand');
    lines.push('  tags: []');
  } else {
    lines.push('  tags:');
  }
  const names = uniqueTagNames(variables, entry.name);
  variables.forEach((v, i) => {
    const comment = `${v.path.join('/')}: ${v.dataType}${v.value !== undefined ? `, now ${String(v.value).slice(0, 40)}` : ''}`;
    if (v.supported) {
      lines.push(`    - tag: ${scalar(names[i]!)}  # ${oneLine(comment)}`);
      lines.push(`      nodeId: ${scalar(v.stableNodeId)}`);
    } else {
      lines.push(`    # skipped ${oneLine(v.path.join('/'))} (${scalar(v.stableNodeId)}): ${oneLine(v.note ?? 'not readable')}`);
    }
  });
  return `${lines.join('\n')}\n`;
}

/**
 * Tag names from the server name and browse path (`plc1.Line1.Press.Torque`), made valid (Name pattern) and
 * unique. The server prefix keeps two PLCs with the same structure from colliding (tag names are gateway-wide).
 */
export function uniqueTagNames(variables: readonly BrowsedVariable[], prefix: string): string[] {
  const used = new Map<string, number>();
  return variables.map((v) => {
    const base = sanitizeTagName([prefix, ...v.path].join('.'));
    const n = (used.get(base) ?? 0) + 1;
    used.set(base, n);
    return n === 1 ? base : `${base.slice(0, 120)}_${n}`;
  });
}

/** Keeps [A-Za-z0-9_.-], starts with a letter or digit, at most 128 characters. */
export function sanitizeTagName(text: string): string {
  const cleaned = text.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[^A-Za-z0-9]+/, '').replace(/\.{2,}/g, '.');
  return (cleaned || 'tag').slice(0, 128);
}

/**
 * A server name for the --yaml entry: the endpoint's host name (`opc.tcp://plc-7.local:4840` → `plc-7.local`), or,
 * when the host is an IP address (which made tags like `127.0.0.1.Line1.Press`), the server's application name
 * (`applicationName` as the server describes itself), else `plc`.
 */
export function serverNameFromEndpoint(endpoint: string, applicationName?: string): string {
  const host = /^opc\.tcp:\/\/(\[[^\]]*\]|[^:/]+)/.exec(endpoint)?.[1] ?? '';
  const isAddress = host === '' || host.startsWith('[') || /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
  if (!isAddress) return sanitizeTagName(host);
  const fromServer = applicationName ? sanitizeTagName(applicationName.trim()) : '';
  return fromServer !== '' && fromServer !== 'tag' ? fromServer : 'plc';
}

/** A YAML scalar, quoted when YAML needs it. */
function scalar(value: string): string {
  return stringify(value, { lineWidth: 0 }).trimEnd();
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}
