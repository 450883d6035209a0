// Types for packaging/lib.mjs (plain JavaScript so that `npm run package` runs with node alone).
export interface Target {
  debArch: string;
  nodeArch: string;
  nodePackage: string;
  ortDir: string;
  tarName: string;
}

export declare const NODE_VERSION: string;
export declare const SUPPORTED_NODE_MAJORS: number[];
export declare const PREFIX: string;
export declare const NODE_BIN: string;
export declare const CONFFILES: string[];
export declare const TARGETS: { amd64: Target; arm64: Target };

export declare function hostTarget(arch?: string): Target | undefined;
export declare function checkNodeVersion(version: string): string;
export declare function debianVersion(npmVersion: string): string;
export declare function debFileName(npmVersion: string, target: Target): string;
export declare function tarFileName(npmVersion: string, target: Target): string;
export declare function appFileDestination(rel: string): string | null;
export declare function packageJsonForRuntime(pkg: Record<string, unknown>): Record<string, unknown>;
export declare function pruneReason(rel: string, target: Target, isDirectory?: boolean): string | null;
export declare function foreignBinaryReason(path: string, target: Target): string | null;
export declare function unitForPackage(unit: string): string;
export declare function launcherScript(): string;
export declare function controlFile(o: {
  npmVersion: string;
  target: Target;
  depends: string[];
  installedSizeKiB: number;
  nodeVersion: string;
  maintainer: string;
}): string;
export declare function parseShlibdeps(out: string): string[];
