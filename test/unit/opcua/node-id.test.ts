import { describe, expect, it } from 'vitest';
import { formatStable, parseNodeId, resolveNodeIdText } from '../../../src/connectors/opcua/node-id.js';

describe('parseNodeId', () => {
  it.each([
    ['ns=2;s=Press.Torque', { namespace: { index: 2 }, type: 's', identifier: 'Press.Torque' }],
    ['ns=3;i=1001', { namespace: { index: 3 }, type: 'i', identifier: '1001' }],
    ['i=85', { namespace: { index: 0 }, type: 'i', identifier: '85' }],
    ['ns=1;g=72962b91-fa75-4ae6-8d28-b404dc7daf63', { namespace: { index: 1 }, type: 'g', identifier: '72962b91-fa75-4ae6-8d28-b404dc7daf63' }],
    ['ns=4;b=M/RbKBsRVkePCePcx24oRA==', { namespace: { index: 4 }, type: 'b', identifier: 'M/RbKBsRVkePCePcx24oRA==' }],
    ['nsu=urn:acme:plc;s=A;B=C', { namespace: { uri: 'urn:acme:plc' }, type: 's', identifier: 'A;B=C' }],
    ['nsu=http://acme.com/UA/;i=7', { namespace: { uri: 'http://acme.com/UA/' }, type: 'i', identifier: '7' }],
    ['ns=2;s="DB1"."Motor".Speed', { namespace: { index: 2 }, type: 's', identifier: '"DB1"."Motor".Speed' }],
  ])('parses %s', (text, expected) => {
    expect(parseNodeId(text)).toEqual({ ok: true, nodeId: expected });
  });

  it.each([
    ['Press.Torque', 'is not a node id'],
    ['ns=x;s=A', 'namespace index "x" is not a number'],
    ['ns=2;i=12a', 'numeric identifier (i=)'],
    ['ns=2;g=not-a-guid', 'GUID identifier'],
    ['ns=2;b=***', 'opaque identifier (b=) is base64'],
    ['ns=2;s=', 'identifier after s= is empty'],
    ['nsu=urn:x', 'is not a node id'],
    ['ns=2;q=1', 'is not a node id'],
  ])('refuses %s', (text, message) => {
    const r = parseNodeId(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(message);
  });
});

describe('resolveNodeIdText', () => {
  const ns = ['http://opcfoundation.org/UA/', 'urn:server', 'urn:acme:plc'];

  it('resolves a namespace URI to this session\'s index', () => {
    const p = parseNodeId('nsu=urn:acme:plc;s=Speed');
    expect(p.ok && resolveNodeIdText(p.nodeId, ns)).toEqual({ ok: true, nodeId: 'ns=2;s=Speed', namespaceIndex: 2 });
    const moved = ['http://opcfoundation.org/UA/', 'urn:server', 'urn:other', 'urn:acme:plc'];
    expect(p.ok && resolveNodeIdText(p.nodeId, moved)).toEqual({ ok: true, nodeId: 'ns=3;s=Speed', namespaceIndex: 3 });
  });

  it('explains an unknown URI or index', () => {
    const uri = parseNodeId('nsu=urn:nope;s=A');
    const r = uri.ok ? resolveNodeIdText(uri.nodeId, ns) : undefined;
    expect(r).toEqual({ ok: false, error: 'namespace URI "urn:nope" is not on the server (its namespaces: urn:server, urn:acme:plc)' });
    const index = parseNodeId('ns=7;i=1');
    expect(index.ok && resolveNodeIdText(index.nodeId, ns)).toEqual({ ok: false, error: 'namespace index 7 does not exist on the server (it has 0..2)' });
  });

  it('formats the stable form for config files', () => {
    expect(formatStable(2, 's', 'Speed', ns)).toBe('nsu=urn:acme:plc;s=Speed');
    expect(formatStable(0, 'i', '2258', ns)).toBe('i=2258');
  });
});
