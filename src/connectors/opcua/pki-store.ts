import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';

/**
 * The certificate store in `<stateDir>/pki`, in the folder layout OPC UA tools share (node-opcua, UaExpert, the
 * OPC Foundation stacks): own/ (our certificate and key), trusted/ and issuers/ (certs + CRLs), rejected/.
 *
 * This file only touches files (node:crypto parses the certificates), so `lineguard pki` is instant and works
 * while the daemon runs: the daemon re-reads the folders at every connect attempt (see certificate-manager.ts).
 */
export interface PkiLayout {
  root: string;
  ownCerts: string;
  ownPrivate: string;
  trusted: string;
  trustedCrl: string;
  rejected: string;
  issuers: string;
  issuersCrl: string;
  /** The client application certificate node-opcua creates on first connect. */
  ownCertificate: string;
}

export function pkiLayout(root: string): PkiLayout {
  return {
    root,
    ownCerts: path.join(root, 'own', 'certs'),
    ownPrivate: path.join(root, 'own', 'private'),
    trusted: path.join(root, 'trusted', 'certs'),
    trustedCrl: path.join(root, 'trusted', 'crl'),
    rejected: path.join(root, 'rejected'),
    issuers: path.join(root, 'issuers', 'certs'),
    issuersCrl: path.join(root, 'issuers', 'crl'),
    ownCertificate: path.join(root, 'own', 'certs', 'client_certificate.pem'),
  };
}

/** Creates the folders (own/private readable by the owner only). */
export function ensurePkiLayout(root: string): PkiLayout {
  const layout = pkiLayout(root);
  for (const dir of [layout.ownCerts, layout.trusted, layout.trustedCrl, layout.rejected, layout.issuers, layout.issuersCrl]) {
    mkdirSync(dir, { recursive: true });
  }
  mkdirSync(layout.ownPrivate, { recursive: true, mode: 0o700 });
  return layout;
}

export interface CertificateInfo {
  /** SHA-1 of the DER certificate, lowercase hex: what OPC UA tools call the thumbprint. */
  thumbprint: string;
  /** Subject as one line, e.g. `CN=PLC1, O=Acme`. */
  subject: string;
  commonName: string;
  validFrom: Date;
  validTo: Date;
  /** Application URI from the subjectAltName (what the server calls itself). */
  applicationUri?: string;
}

export interface StoredCertificate extends CertificateInfo {
  file: string;
}

/** The first certificate of a DER chain (servers may send their certificate followed by issuers). */
export function firstCertificate(der: Buffer): Buffer {
  if (der.length < 2 || der[0] !== 0x30) return der;
  const lenByte = der[1]!;
  let length: number;
  let header = 2;
  if (lenByte < 0x80) {
    length = lenByte;
  } else {
    const n = lenByte & 0x7f;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[2 + i]!;
    header += n;
  }
  return der.subarray(0, Math.min(der.length, header + length));
}

export function thumbprintOf(der: Buffer): string {
  return createHash('sha1').update(firstCertificate(der)).digest('hex');
}

export function describeCertificate(der: Buffer): CertificateInfo {
  const cert = firstCertificate(der);
  const x509 = new X509Certificate(cert);
  const subjectParts = x509.subject.split('\n').filter((p) => p.length > 0);
  const cn = subjectParts.find((p) => p.startsWith('CN='))?.slice(3) ?? '';
  const uri = /URI:([^,\s]+)/.exec(x509.subjectAltName ?? '')?.[1];
  return {
    thumbprint: thumbprintOf(cert),
    subject: subjectParts.join(', '),
    commonName: cn,
    validFrom: new Date(x509.validFrom),
    validTo: new Date(x509.validTo),
    ...(uri ? { applicationUri: uri } : {}),
  };
}

/** Reads a PEM (first CERTIFICATE block) or DER certificate file into DER. */
export function readCertificateFile(file: string): Buffer {
  const raw = readFileSync(file);
  const text = raw.toString('latin1');
  const pem = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(text);
  if (pem) return Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64');
  return firstCertificate(raw);
}

/** `aa:BB cc` → `aabbcc`: thumbprints are pasted from logs, UaExpert (colons) or Windows (spaces). */
export function normalizeThumbprint(text: string): string {
  return text.replace(/[\s:]/g, '').toLowerCase();
}

export type MoveResult =
  | { status: 'moved'; certificate: StoredCertificate }
  | { status: 'already'; certificate: StoredCertificate }
  | { status: 'not-found' }
  | { status: 'ambiguous'; matches: StoredCertificate[] };

export class PkiStore {
  readonly layout: PkiLayout;

  constructor(root: string) {
    this.layout = pkiLayout(root);
  }

  trusted(): StoredCertificate[] {
    return listCertificates(this.layout.trusted);
  }

  rejected(): StoredCertificate[] {
    return listCertificates(this.layout.rejected);
  }

  issuers(): StoredCertificate[] {
    return listCertificates(this.layout.issuers);
  }

  /** Our own application certificate, once node-opcua has created it. */
  own(): StoredCertificate | undefined {
    return listCertificates(this.layout.ownCerts).find((c) => path.basename(c.file) === 'client_certificate.pem');
  }

  isTrusted(thumbprint: string): boolean {
    return this.trusted().some((c) => c.thumbprint === thumbprint);
  }

  isRejected(thumbprint: string): boolean {
    return this.rejected().some((c) => c.thumbprint === thumbprint);
  }

  /**
   * Moves a rejected certificate to trusted/ (a thumbprint or a unique prefix of at least 8 hex digits). A copy
   * left in rejected/ would win (OPC UA stacks treat "in both" as rejected), so it is removed.
   */
  trust(thumbprint: string): MoveResult {
    return this.#move(thumbprint, this.layout.rejected, this.layout.trusted, () => this.trusted());
  }

  /** Moves a trusted certificate to rejected/. */
  reject(thumbprint: string): MoveResult {
    return this.#move(thumbprint, this.layout.trusted, this.layout.rejected, () => this.rejected());
  }

  /** Adds a certificate file (PEM or DER) straight to trusted/, e.g. a server certificate handed over by the PLC vendor. */
  trustFile(file: string): StoredCertificate {
    const der = readCertificateFile(file);
    const info = describeCertificate(der);
    ensurePkiLayout(this.layout.root);
    const existing = this.trusted().find((c) => c.thumbprint === info.thumbprint);
    if (existing) return existing;
    for (const stale of this.rejected().filter((c) => c.thumbprint === info.thumbprint)) unlinkSync(stale.file);
    const target = path.join(this.layout.trusted, `${safeName(info.commonName)}[${info.thumbprint}].der`);
    writeFileSync(target, der);
    return { ...info, file: target };
  }

  #move(thumbprint: string, from: string, to: string, alreadyIn: () => StoredCertificate[]): MoveResult {
    const wanted = normalizeThumbprint(thumbprint);
    const matches = (list: StoredCertificate[]): StoredCertificate[] =>
      list.filter((c) => c.thumbprint === wanted || (wanted.length >= 8 && c.thumbprint.startsWith(wanted)));
    const candidates = matches(listCertificates(from));
    const unique = new Set(candidates.map((c) => c.thumbprint));
    if (unique.size > 1) return { status: 'ambiguous', matches: candidates };
    const present = matches(alreadyIn());
    if (candidates.length === 0) {
      return present.length > 0 ? { status: 'already', certificate: present[0]! } : { status: 'not-found' };
    }
    mkdirSync(to, { recursive: true });
    const first = candidates[0]!;
    let moved: StoredCertificate | undefined;
    for (const c of candidates) {
      if (present.length > 0 || moved) {
        unlinkSync(c.file);
        continue;
      }
      const target = path.join(to, path.basename(c.file));
      renameSync(c.file, target);
      moved = { ...c, file: target };
    }
    return { status: 'moved', certificate: moved ?? present[0] ?? first };
  }
}

/** Certificates in one folder; files that are not certificates are skipped. */
export function listCertificates(folder: string): StoredCertificate[] {
  if (!existsSync(folder)) return [];
  const out: StoredCertificate[] = [];
  for (const name of readdirSync(folder).sort()) {
    const file = path.join(folder, name);
    try {
      if (!statSync(file).isFile()) continue;
      out.push({ ...describeCertificate(readCertificateFile(file)), file });
    } catch {
      // Not a certificate (a CSR, an editor backup): nothing to list.
    }
  }
  return out;
}

/** A file name from a common name: characters Windows or shells choke on, and control characters, become `_`. */
function safeName(text: string): string {
  const cleaned = [...text].map((ch) => (ch.charCodeAt(0) < 0x20 || '<>:"/\\|?*'.includes(ch) ? '_' : ch)).join('');
  return cleaned || 'certificate';
}
