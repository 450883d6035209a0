import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../../src/daemon/config/load.js';
import { fixture, ROOT } from '../runtime/runtime-context.js';

/** check-config compares each model's config with its ONNX file (read without ONNX Runtime), with FILE:LINE:COL. */
const RUL = path.join(ROOT, 'models/cmapss-rul/model.onnx');
const TAGS14 = ['t24', 't30', 't50', 'p30', 'nf', 'nc', 'ps30', 'phi', 'nrf', 'nrc', 'bpr', 'htbleed', 'w31', 'w32'];

function configWith(model: string): string {
  return `gateway: { id: gw, stateDir: /tmp/lg-unused }
models:
  - name: rul
    file: ${JSON.stringify(RUL)}
${model}`;
}

function load(model: string): ReturnType<typeof loadConfigText> {
  return loadConfigText(configWith(model), 'lineguard.yaml', {});
}

describe('check-config reads the model files', () => {
  it('accepts the shipped model wired as its card says', () => {
    const r = load(`    inputs: [${TAGS14.map((t) => `engine1.${t}`).join(', ')}]
    window: { samples: 30, periodMs: 1000 }
    alert: { output: rul_cycles, raiseBelow: 30, clearAbove: 40 }`);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.warnings).toEqual([]);
  });

  it('refuses a window of 60 where the model takes 30, 13 tags where it takes 14, and a misspelt output, each at its line', () => {
    const r = load(`    inputs: [${TAGS14.slice(0, 13).map((t) => `engine1.${t}`).join(', ')}]
    window: { samples: 60 }
    alert: { output: rul_cycle, raiseBelow: 30, clearAbove: 40 }`);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toEqual([
      expect.stringMatching(/^lineguard\.yaml:5:13 models\[0\]\.inputs: the model takes 14 features \(input "input" \[batch, 30, 14\]\), the config lists 13 input tags$/),
      expect.stringMatching(/^lineguard\.yaml:5:13 models\[0\]\.inputs: the model's metadata names 14 input features \(t24, .*\), the config lists 13$/),
      expect.stringMatching(/^lineguard\.yaml:6:24 models\[0\]\.window\.samples: the model takes a window of 30 .*, the config gives 60$/),
      expect.stringMatching(/^lineguard\.yaml:6:24 models\[0\]\.window\.samples: the model's metadata says it was trained on windows of 30, the config gives 60$/),
      expect.stringMatching(/^lineguard\.yaml:7:22 models\[0\]\.alert\.output: "rul_cycle" is not an output of the model \(outputs: rul_cycles\)$/),
    ]);
  });

  it('an outputIndex outside the output, a model input of another type and a corrupt file are errors', () => {
    const wrongIndex = loadConfigText(`gateway: { id: gw, stateDir: /tmp/lg-unused }
models:
  - name: modes
    file: ${JSON.stringify(fixture('classes.onnx'))}
    inputs: [x, y, z]
    alert: { output: failure_mode_probabilities, outputIndex: 3, raiseAbove: 0.9, clearBelow: 0.5 }
`, 'c.yaml', {});
    expect(wrongIndex.ok ? [] : wrongIndex.errors).toEqual([
      expect.stringMatching(/^c\.yaml:6:63 models\[0\]\.alert\.outputIndex: 3 is outside output "failure_mode_probabilities" \[batch, 3\] \(3 elements\)$/),
    ]);
    const corrupt = loadConfigText(`gateway: { id: gw, stateDir: /tmp/lg-unused }
models:
  - name: bad
    file: ${JSON.stringify(fixture('corrupt.onnx'))}
    inputs: [a, b]
    window: { samples: 4 }
    alert: { raiseAbove: 0.9, clearBelow: 0.5 }
`, 'c.yaml', {});
    expect(corrupt.ok ? [] : corrupt.errors).toEqual([expect.stringMatching(/^c\.yaml:4:11 models\[0\]\.file: .*corrupt\.onnx cannot be used: /)]);
  });

  it('warns (and still accepts) a missing file, tags in another order than the model\'s features, and normalisation without metadata', () => {
    const shuffled = [...TAGS14];
    [shuffled[0], shuffled[1]] = [shuffled[1]!, shuffled[0]!];
    const r = load(`    inputs: [${shuffled.map((t) => `engine1.${t}`).join(', ')}]
    window: { samples: 30 }
    alert: { raiseBelow: 30, clearAbove: 40 }`);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.warnings).toEqual([
      expect.stringMatching(/^lineguard\.yaml:5:13 models\[0\]\.inputs: warning: the tags are in another order than the model's features .*: engine1\.t30 is input 0 but feature 1; engine1\.t24 is input 1 but feature 0$/),
    ]);
    const missing = loadConfigText(`gateway: { id: gw, stateDir: /tmp/lg-unused }
models:
  - name: later
    file: /nonexistent/model.onnx
    inputs: [a]
    alert: { raiseAbove: 0.9, clearBelow: 0.5 }
  - name: plain
    file: ${JSON.stringify(fixture('no-metadata.onnx'))}
    inputs: [a, b]
    window: { samples: 4 }
    alert: { raiseAbove: 0.9, clearBelow: 0.5 }
`, 'c.yaml', {});
    expect(missing.ok).toBe(true);
    if (!missing.ok) return;
    expect(missing.warnings).toEqual([
      'c.yaml:4:11 models[0].file: warning: /nonexistent/model.onnx does not exist (yet): the model is down until the file appears, then it is loaded without a restart',
      expect.stringMatching(/^c\.yaml:\d+:\d+ models\[1\]\.normalisation: warning: .*no-metadata\.onnx has no Lineguard metadata: the model gets raw values/),
    ]);
  });
});

describe('check-config on windows over OPC UA tags', () => {
  it('warns when a model reads OPC UA tags (report by exception) over several rows without window.periodMs', () => {
    const text = `gateway: { id: gw, stateDir: /tmp/lg-unused }
opcua:
  - name: plc
    endpoint: opc.tcp://10.0.0.5:4840
    security: { mode: None }
    tags:
${TAGS14.map((t) => `      - { tag: engine1.${t}, nodeId: "ns=2;s=${t}" }`).join('\n')}
models:
  - name: rul
    file: ${JSON.stringify(RUL)}
    inputs: [${TAGS14.map((t) => `engine1.${t}`).join(', ')}]
    window: { samples: 30 }
    alert: { raiseBelow: 30, clearAbove: 40 }
`;
    const r = loadConfigText(text, 'c.yaml', {});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.warnings).toEqual([expect.stringMatching(/^c\.yaml:\d+:\d+ models\[0\]\.window: warning: inputs engine1\.t24, engine1\.t30, engine1\.t50, \.\.\. come from OPC UA, which reports on change: .*\(set periodMs\)$/)]);
    const withGrid = loadConfigText(text.replace('window: { samples: 30 }', 'window: { samples: 30, periodMs: 1000 }'), 'c.yaml', {});
    expect(withGrid.ok && withGrid.warnings).toEqual([]);
  });
});

describe('check-config on a model path that is not a regular file', () => {
  it('a FIFO or a device as the model file is refused at once, never opened blocking', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lg-fifo-'));
    try {
      const fifo = path.join(dir, 'model.onnx');
      execFileSync('mkfifo', [fifo]);
      for (const file of [fifo, '/dev/zero']) {
        const t0 = Date.now();
        const r = loadConfigText(`gateway: { id: gw, stateDir: /tmp/lg-unused }
models:
  - name: m
    file: ${file}
    inputs: [a]
    alert: { raiseAbove: 0.9, clearBelow: 0.5 }
`, 'c.yaml', {});
        expect(Date.now() - t0).toBeLessThan(2000);
        expect(r.ok ? [] : r.errors).toEqual([expect.stringMatching(/^c\.yaml:4:11 models\[0\]\.file: .* not a regular file/)]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
