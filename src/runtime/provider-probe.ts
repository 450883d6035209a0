import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionProvider } from './config.js';
import type { ValueInfo } from './inference-protocol.js';
import { providerUsed, type ProviderNodeCounts } from './provider-profile.js';
import { createSession, ortErrorMessage, readProfile, runSession, valueInfos } from './session-factory.js';

/** What one execution provider does with a model on this machine. */
export interface ProviderProbe {
  provider: ExecutionProvider;
  loads: boolean;
  /** Why the session could not be created, or why the test run failed. */
  error?: string;
  /** The provider that really ran the test inference (from the profile). */
  ranOn?: string;
  nodes?: ProviderNodeCounts;
  /** Why no test inference was run (e.g. an input that is not float32). */
  notRun?: string;
  createMs?: number;
  runMs?: number;
}

export interface ProbeReport {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  providers: ProviderProbe[];
}

/**
 * Tries each provider alone on the model (in this thread: for the CLI, not the daemon): creates a session, runs
 * one profiled inference on zeros (symbolic dimensions as 1) and reads which provider ran the nodes.
 */
export async function probeProviders(bytes: Uint8Array, providers: readonly ExecutionProvider[]): Promise<ProbeReport> {
  const profileDir = await mkdtemp(join(tmpdir(), 'lineguard-probe-'));
  const report: ProbeReport = { inputs: [], outputs: [], providers: [] };
  try {
    for (const provider of providers) {
      const probe: ProviderProbe = { provider, loads: false };
      report.providers.push(probe);
      let created;
      try {
        created = await createSession(bytes, { providers: [provider], deviceId: 0, intraOpThreads: 1, profileDir }, true);
      } catch (err) {
        probe.error = ortErrorMessage(err).replace(/^no execution provider could load the model: \w+: /, '');
        continue;
      }
      probe.loads = true;
      probe.createMs = created.createMs;
      const inputs = valueInfos(created.session.inputMetadata);
      if (report.inputs.length === 0) {
        report.inputs = inputs;
        report.outputs = valueInfos(created.session.outputMetadata);
      }
      try {
        const only = inputs.length === 1 ? inputs[0] : undefined;
        if (!only || only.type !== 'float32') {
          probe.notRun = `the test run feeds one float32 input; this model has ${inputs.map((i) => `${i.name}: ${i.type}`).join(', ')}`;
          continue;
        }
        const dims = only.shape.map((d) => (typeof d === 'number' ? d : 1));
        const t0 = performance.now();
        await runSession(created.session, new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
        probe.runMs = performance.now() - t0;
        probe.nodes = await readProfile(created);
        const ranOn = providerUsed(probe.nodes, provider);
        if (ranOn) probe.ranOn = ranOn;
      } catch (err) {
        probe.error = `the session loads but the test inference failed: ${ortErrorMessage(err)}`;
      } finally {
        await created.session.release();
      }
    }
  } finally {
    await rm(profileDir, { recursive: true, force: true });
  }
  return report;
}
