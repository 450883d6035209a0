import { rmSync } from 'node:fs';
import type { OPCUACertificateManager } from 'node-opcua';
import type { Opcua } from './opcua-module.js';
import { describeCertificate, ensurePkiLayout, firstCertificate, PkiStore, type CertificateInfo } from './pki-store.js';

/** What became of the server certificate presented during one connect attempt. */
export interface ServerCertificateVerdict {
  certificate: CertificateInfo;
  /** `Good`, `BadCertificateUntrusted`, `BadCertificateTimeInvalid`... */
  status: string;
  /** True when this attempt trusted a certificate that was unknown until now (first use, or --trust-server). */
  trustedNow: boolean;
  /** Set when trust on first use refused it because another certificate of the same server is trusted already. */
  replaces?: CertificateInfo;
}

/**
 * - `never`: an unknown server certificate is refused (and lands in rejected/ for `lineguard pki trust`);
 * - `first-use`: trusted if no certificate of the same server (application URI, else subject) is trusted yet: a
 *   server whose certificate *changed* is still refused, since that is what an impostor looks like;
 * - `always`: trusted (the operator asked for it, `lineguard browse --trust-server`).
 */
export type TrustUnknown = 'never' | 'first-use' | 'always';

export interface ClientCertificateManagerOptions {
  pkiDir: string;
  trustUnknown: TrustUnknown;
  /** Called once per verification with the outcome. */
  onVerdict?: (verdict: ServerCertificateVerdict) => void;
}

/**
 * A certificate manager rooted in `<stateDir>/pki`, made fresh for every connect attempt.
 *
 * Why fresh: node-opcua-pki keeps an in-memory index of trusted/ and rejected/ and updates it through chokidar
 * watchers, which miss changes on some filesystems and race with a move made just before they are ready. A new
 * manager (watchers off) scans the folders when it starts, so `lineguard pki trust` run in another process is
 * picked up by the very next reconnect attempt, deterministically. The scan costs a few file reads.
 *
 * Never left to node-opcua's default: without `clientCertificateManager` the client creates one under
 * `~/.config/node-opcua-default-nodejs/PKI` that auto-accepts every server certificate. node-opcua's own
 * `automaticallyAcceptUnknownCertificate` is never used either: it accepts *any* unknown certificate at any time,
 * which is not trust on first use.
 */
export function createClientCertificateManager(opcua: Opcua, options: ClientCertificateManagerOptions): OPCUACertificateManager {
  ensurePkiLayout(options.pkiDir);
  const manager = new opcua.OPCUACertificateManager({
    rootFolder: options.pkiDir,
    automaticallyAcceptUnknownCertificate: false,
    disableFileWatchers: true,
  });
  const store = new PkiStore(options.pkiDir);
  const original = manager.checkCertificate.bind(manager) as (chain: Buffer | Buffer[]) => Promise<{ name: string; isGood(): boolean }>;

  // The client verifies the server certificate through this one method (client_base_impl `_verify_serverCertificate`),
  // awaiting the promise form. Wrapping it lets us say which certificate was refused and implement trust on first use.
  const check = async (chain: Buffer | Buffer[]): Promise<unknown> => {
    const der = Array.isArray(chain) ? Buffer.concat(chain) : chain;
    let status = await original(chain);
    let info: CertificateInfo | undefined;
    try {
      info = describeCertificate(der);
    } catch {
      return status;
    }
    if (status.name === 'BadCertificateUntrusted' && store.isTrusted(info.thumbprint)) {
      // The operator trusted it, but an attempt that was refused while `pki trust` ran wrote it back to rejected/,
      // and node-opcua-pki lets the rejected copy win. Drop the stale copy, index it as trusted, verify again (so
      // validity and chain checks still apply).
      for (const stale of store.rejected().filter((c) => c.thumbprint === info.thumbprint)) rmSync(stale.file, { force: true });
      await manager.trustCertificate(firstCertificate(der));
      status = await original(chain);
    }
    if (status.name === 'BadCertificateUntrusted' && options.trustUnknown !== 'never') {
      const sameServer = store.trusted().find((c) => (c.applicationUri && info.applicationUri ? c.applicationUri === info.applicationUri : c.subject === info.subject));
      if (options.trustUnknown === 'always' || !sameServer) {
        await manager.trustCertificate(firstCertificate(der));
        options.onVerdict?.({ certificate: info, status: 'Good', trustedNow: true });
        return opcua.StatusCodes.Good;
      }
      options.onVerdict?.({ certificate: info, status: status.name, trustedNow: false, replaces: sameServer });
      return status;
    }
    options.onVerdict?.({ certificate: info, status: status.name, trustedNow: false });
    return status;
  };
  (manager as unknown as { checkCertificate: unknown }).checkCertificate = (chain: Buffer | Buffer[], callback?: (err: Error | null, status?: unknown) => void) => {
    const result = check(chain);
    if (!callback) return result;
    result.then((status) => callback(null, status), (err: Error) => callback(err));
    return undefined;
  };
  return manager;
}

/**
 * Releases a manager after its client disconnected. The client counts references (its constructor adds one, its
 * disconnect removes one, and `dispose` only really disposes at zero); a client whose connect failed never
 * released its reference, so force it.
 */
export async function disposeCertificateManager(manager: OPCUACertificateManager): Promise<void> {
  manager.referenceCounter = 0;
  await manager.dispose();
}
