/**
 * `lineguard model inspect` against real models and this machine's onnxruntime-node build (no GPU libraries).
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../../src/core/cli-command.js';
import { modelCommand } from '../../../src/runtime/index.js';
import { fixture } from '../../unit/runtime/runtime-context.js';

async function inspect(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await modelCommand.run(argv, { out: (l) => out.push(l), err: (l) => err.push(l), log: pino({ level: 'silent' }) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('lineguard model inspect', () => {
  it('prints inputs, outputs, metadata and which providers run the model here', async () => {
    const { code, out } = await inspect('inspect', fixture('last-value.onnx'));
    expect(code).toBe(EXIT.OK);
    expect(out).toMatch(/^File {8}.*last-value\.onnx \(1\.0KB\)$/m);
    expect(out).toMatch(/^SHA-256 {5}[0-9a-f]{64}$/m);
    expect(out).toMatch(/^Version {5}1\.0\.0\+[0-9a-f]{12}$/m);
    expect(out).toContain('ONNX        IR 7, opset ai.onnx 13, producer lineguard-fixtures');
    expect(out).toContain('  input  float32  [batch, 4, 2]');
    expect(out).toContain('    feature 1: b [1]  mean 10  std 2  feature b');
    expect(out).toContain('  failure_probability  float32  [batch, 1]  probability');
    expect(out).toContain('  window_mean  float32  [batch, 2]  regression [1]');
    expect(out).toContain('Recommended alert  {"output":"failure_probability","raiseAbove":0.8,"clearBelow":0.5}');
    expect(out).toMatch(/Execution providers \(onnxruntime-node 1\.30\.\d+, linux\/x64\)/);
    expect(out).toMatch(/^ {2}tensorrt {2}unavailable: .+$/m);
    expect(out).toMatch(/^ {2}cuda {6}unavailable: .+$/m);
    expect(out).toMatch(/^ {2}cpu {7}ok: runs here \(3 on CPUExecutionProvider\), test run [\d.]+ ms$/m);
  });

  it('--json gives the same facts to scripts', async () => {
    const { code, out } = await inspect('inspect', fixture('classes.onnx'), '--json', '--providers', 'cuda,cpu');
    expect(code).toBe(EXIT.OK);
    const report = JSON.parse(out) as Record<string, unknown>;
    expect(report).toMatchObject({
      version: expect.stringMatching(/^0\.3\.1\+/),
      onnx: { irVersion: 7, opsets: [{ domain: '', version: 13 }] },
      inputs: [{ name: 'input', type: 'float32', shape: ['batch', 1, 3] }],
      outputs: [{ name: 'failure_mode_probabilities', type: 'float32', shape: ['batch', 3] }],
      metadata: { outputs: [{ labels: ['ok', 'wear', 'overheat'] }] },
      providers: [
        { provider: 'cuda', loads: false, error: expect.any(String) },
        { provider: 'cpu', loads: true, ranOn: 'cpu', nodes: { CPUExecutionProvider: 2 } },
      ],
    });
  });

  it('says when a model has no Lineguard metadata', async () => {
    const { code, out } = await inspect('inspect', fixture('no-metadata.onnx'), '--providers=cpu');
    expect(code).toBe(EXIT.OK);
    expect(out).toContain('no Lineguard metadata: features are fed raw');
    expect(out).not.toContain('tensorrt');
  });

  it('exit codes: missing file 66, corrupt file 65, no provider 69, usage 64', async () => {
    expect(await inspect('inspect', fixture('nope.onnx'))).toMatchObject({ code: EXIT.NOINPUT, err: expect.stringContaining('does not exist') });
    expect(await inspect('inspect', fixture('corrupt.onnx'))).toMatchObject({ code: EXIT.DATAERR, err: expect.stringContaining('is not a valid ONNX model') });
    const gpuOnly = await inspect('inspect', fixture('last-value.onnx'), '--providers', 'tensorrt,cuda');
    expect(gpuOnly.code).toBe(EXIT.UNAVAILABLE);
    expect(await inspect('inspect')).toMatchObject({ code: EXIT.USAGE, err: expect.stringContaining('missing FILE') });
    expect(await inspect('list')).toMatchObject({ code: EXIT.USAGE, err: expect.stringContaining('unknown subcommand "list"') });
    expect(await inspect('inspect', 'x.onnx', '--providers', 'rocm')).toMatchObject({ code: EXIT.USAGE });
    expect(await inspect('--help')).toMatchObject({ code: EXIT.OK, out: expect.stringContaining('Usage: lineguard model inspect FILE') });
  });
});
