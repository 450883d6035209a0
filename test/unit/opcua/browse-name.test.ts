import { describe, expect, it } from 'vitest';
import { serverNameFromEndpoint } from '../../../src/connectors/opcua/browse-yaml.js';

describe('browse --yaml server name', () => {
  it('uses the host name, or the server application name for an IP endpoint (no tags named 127.0.0.1.Line1...)', () => {
    expect(serverNameFromEndpoint('opc.tcp://plc-7.local:4840', 'Whatever')).toBe('plc-7.local');
    expect(serverNameFromEndpoint('opc.tcp://127.0.0.1:4840', 'Press Line PLC')).toBe('Press_Line_PLC');
    expect(serverNameFromEndpoint('opc.tcp://[::1]:4840', 'plc1')).toBe('plc1');
    expect(serverNameFromEndpoint('opc.tcp://192.168.10.5:4840')).toBe('plc');
    expect(serverNameFromEndpoint('opc.tcp://192.168.10.5:4840', '  ')).toBe('plc');
  });
});
