import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { BrowsedVariable } from '../../../src/connectors/opcua/browse.js';
import { renderServerEntry, sanitizeTagName, serverNameFromEndpoint, uniqueTagNames } from '../../../src/connectors/opcua/browse-yaml.js';

const variable = (path: string[], extra: Partial<BrowsedVariable> = {}): BrowsedVariable => ({
  nodeId: 'ns=2;s=x', stableNodeId: `nsu=urn:a;s=${path.join('.')}`, path, dataType: 'Double', valueRank: -1, statusName: 'Good', supported: true, value: 1, ...extra,
});

describe('browse YAML', () => {
  it('makes valid, unique tag names from browse paths', () => {
    expect(sanitizeTagName('Line 1.Press #2.Torque')).toBe('Line_1.Press_2.Torque');
    expect(sanitizeTagName('__x')).toBe('x');
    expect(sanitizeTagName('')).toBe('tag');
    expect(uniqueTagNames([variable(['A b']), variable(['A_b']), variable(['C'])], 'plc')).toEqual(['plc.A_b', 'plc.A_b_2', 'plc.C']);
    expect(serverNameFromEndpoint('opc.tcp://plc-7.local:4840')).toBe('plc-7.local');
  });

  it('renders an entry YAML reads back, with skipped variables as comments and the password as a reference', () => {
    const text = renderServerEntry(
      { name: 'p', endpoint: 'opc.tcp://h:4840', mode: 'SignAndEncrypt', policy: 'Basic256Sha256', auth: { type: 'username', username: 'op', password: 'secret!' }, passwordEnv: 'PLC_PW' },
      [variable(['Speed: now'], { stableNodeId: 'nsu=urn:a;s=Speed: now' }), variable(['Arr'], { supported: false, note: 'array of 3 Double: add arrayIndex' })],
      ['header line'],
    );
    expect(text).not.toContain('secret!');
    const parsed = parse(text) as Array<Record<string, unknown>>;
    expect(parsed).toEqual([{
      name: 'p', endpoint: 'opc.tcp://h:4840', security: { mode: 'SignAndEncrypt', policy: 'Basic256Sha256' },
      auth: { type: 'username', username: 'op', password: '${env:PLC_PW}' },
      tags: [{ tag: 'p.Speed_now', nodeId: 'nsu=urn:a;s=Speed: now' }],
    }]);
    expect(text).toContain('# skipped Arr (nsu=urn:a;s=Arr): array of 3 Double: add arrayIndex');
  });
});
