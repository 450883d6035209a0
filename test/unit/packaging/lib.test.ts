/**
 * The decisions of `npm run package` (packaging/lib.mjs): what goes into the .deb, what is pruned from
 * node_modules, the control file, the conffiles, the packaged unit. The full build and install check is
 * `npm run package:check` (minutes; not part of npm test).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CONFFILES, NODE_BIN, NODE_VERSION, SUPPORTED_NODE_MAJORS, TARGETS, appFileDestination, checkNodeVersion, controlFile,
  debFileName, debianVersion, foreignBinaryReason, hostTarget, launcherScript, packageJsonForRuntime, parseShlibdeps,
  pruneReason, tarFileName, unitForPackage,
} from '../../../packaging/lib.mjs';

const x64 = TARGETS.amd64;
const arm = TARGETS.arm64;

describe('versions and names', () => {
  it('ships a supported Node.js major, pinned exactly', () => {
    expect(checkNodeVersion(NODE_VERSION)).toBe(NODE_VERSION);
    expect(SUPPORTED_NODE_MAJORS).toContain(Number(NODE_VERSION.split('.')[0]));
    expect(() => checkNodeVersion('20.20.2')).toThrow(/22 or 24/);
    expect(() => checkNodeVersion('24')).toThrow(/exact version/);
  });

  it('maps npm versions to Debian versions that sort the same way', () => {
    expect(debianVersion('0.1.0')).toBe('0.1.0');
    expect(debianVersion('1.2.0-rc.1')).toBe('1.2.0~rc.1');
    expect(debianVersion('1.2.0+build.5')).toBe('1.2.0');
    expect(() => debianVersion('latest')).toThrow(/semver/);
    expect(debFileName('0.1.0', x64)).toBe('lineguard_0.1.0_amd64.deb');
    expect(debFileName('0.1.0', arm)).toBe('lineguard_0.1.0_arm64.deb');
    expect(tarFileName('0.1.0', x64)).toBe('lineguard-0.1.0-linux-x64.tar.gz');
  });

  it('knows the target of this machine and has none for others', () => {
    expect(hostTarget('x64')).toBe(x64);
    expect(hostTarget('arm64')).toBe(arm);
    expect(hostTarget('s390x')).toBeUndefined();
  });
});

describe('files of the checkout shipped in the package', () => {
  it('ships the compiled gateway, launcher, schema, models with cards and the demo data', () => {
    expect(appFileDestination('bin/lineguard')).toBe('/opt/lineguard/bin/lineguard');
    expect(appFileDestination('dist/src/daemon/cli.js')).toBe('/opt/lineguard/dist/src/daemon/cli.js');
    expect(appFileDestination('dist/src/runtime/inference-worker.js')).toBe('/opt/lineguard/dist/src/runtime/inference-worker.js');
    expect(appFileDestination('schema/lineguard.schema.json')).toBe('/opt/lineguard/schema/lineguard.schema.json');
    expect(appFileDestination('models/ai4i-fault/model.onnx')).toBe('/opt/lineguard/models/ai4i-fault/model.onnx');
    expect(appFileDestination('models/cmapss-rul/README.md')).toBe('/opt/lineguard/models/cmapss-rul/README.md');
    expect(appFileDestination('models/data/ai4i2020/ai4i2020.csv')).toBe('/opt/lineguard/models/data/ai4i2020/ai4i2020.csv');
    expect(appFileDestination('systemd/lineguard.sysusers.conf')).toBe('/usr/lib/sysusers.d/lineguard.conf');
    expect(appFileDestination('systemd/lineguard.tmpfiles.conf')).toBe('/usr/lib/tmpfiles.d/lineguard.conf');
    // The status page's static files, served from the source tree.
    for (const f of ['index.html', 'status-page.css', 'status-page.js', 'sparkline.js']) {
      expect(appFileDestination(`src/daemon/status-page/${f}`)).toBe(`/opt/lineguard/src/daemon/status-page/${f}`);
    }
    expect(appFileDestination('src/daemon/status-page.ts')).toBeNull();
  });

  it('leaves out sources, tests, benchmarks, source maps, training code and the unit (rewritten)', () => {
    for (const rel of [
      'src/daemon/cli.ts', 'test/unit/packaging/lib.test.ts', 'dist/test/support/x.js', 'dist/bench/run.js',
      'dist/src/daemon/cli.js.map', 'models/training/train_ai4i.py', 'models/evaluate.mjs', 'models/ai4i-fault/reference.json',
      'package-lock.json', 'tsconfig.json', '.npmrc', 'packaging/build.mjs', 'systemd/lineguard.service', 'docs/jetson.md',
    ]) expect(appFileDestination(rel), rel).toBeNull();
  });

  it('keeps only what the runtime reads of package.json ("type": "module" above all)', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as Record<string, unknown>;
    const out = packageJsonForRuntime(pkg);
    expect(out.type).toBe('module');
    expect(out.version).toBe(pkg.version);
    expect(out.dependencies).toEqual(pkg.dependencies);
    expect(out).not.toHaveProperty('devDependencies');
    expect(out).not.toHaveProperty('scripts');
  });
});

describe('pruning production node_modules', () => {
  it('keeps only the onnxruntime-node binaries the target loads', () => {
    const ort = 'onnxruntime-node/bin/napi-v6';
    expect(pruneReason(`${ort}/linux/x64`, x64, true)).toBeNull();
    expect(pruneReason(`${ort}/linux/x64/libonnxruntime.so.1`, x64)).toBeNull();
    expect(pruneReason(`${ort}/linux/x64/onnxruntime_binding.node`, x64)).toBeNull();
    for (const d of ['linux/arm64', 'darwin/arm64', 'win32/x64', 'win32/arm64']) expect(pruneReason(`${ort}/${d}`, x64, true), d).toMatch(/binaries for/);
    expect(pruneReason(`${ort}/linux/arm64`, arm, true)).toBeNull();
    expect(pruneReason(`${ort}/linux/x64`, arm, true)).toMatch(/binaries for linux\/x64/);
    expect(pruneReason(`${ort}/darwin`, x64, true)).toMatch(/binaries for darwin/);
    expect(pruneReason(`${ort}/win32`, x64, true)).toMatch(/binaries for win32/);
    expect(pruneReason(`${ort}/linux`, x64, true)).toBeNull();
    expect(pruneReason('onnxruntime-node/dist/index.js', x64)).toBeNull();
  });

  it('keeps the better-sqlite3 addon and its JavaScript, not its sources or build leftovers', () => {
    expect(pruneReason('better-sqlite3/build/Release/better_sqlite3.node', x64)).toBeNull();
    expect(pruneReason('better-sqlite3/build', x64, true)).toBeNull();
    expect(pruneReason('better-sqlite3/build/Release', x64, true)).toBeNull();
    expect(pruneReason('better-sqlite3/lib/database.js', x64)).toBeNull();
    expect(pruneReason('better-sqlite3/package.json', x64)).toBeNull();
    expect(pruneReason('better-sqlite3/deps', x64, true)).toMatch(/sources/);
    expect(pruneReason('better-sqlite3/src', x64, true)).toMatch(/sources/);
    expect(pruneReason('better-sqlite3/build/Release/obj.target', x64, true)).toMatch(/leftovers/);
    expect(pruneReason('better-sqlite3/build/Release/test_extension.node', x64)).toMatch(/leftovers/);
    expect(pruneReason('better-sqlite3/build/Makefile', x64)).toMatch(/leftovers/);
  });

  it('drops types, source maps, docs and dependency tests; keeps code, data and licences', () => {
    expect(pruneReason('pino/index.d.ts', x64)).toMatch(/not loaded/);
    expect(pruneReason('mqtt/build/lib/client.js.map', x64)).toMatch(/not loaded/);
    expect(pruneReason('@sinclair/typebox/build/cjs/index.d.ts', x64)).toMatch(/not loaded/);
    expect(pruneReason('yaml/README.md', x64)).toMatch(/documentation|not loaded/);
    expect(pruneReason('pino/test', x64, true)).toMatch(/tests/);
    expect(pruneReason('@peculiar/asn1-schema/docs', x64, true)).toMatch(/tests|docs/);
    expect(pruneReason('a/node_modules/b/test', x64, true)).toMatch(/tests/);
    // Only a package's own top-level test/ folder goes: a lib/test/ inside a package is code.
    expect(pruneReason('ajv/dist/test', x64, true)).toBeNull();
    for (const keep of ['pino/lib/history.js', 'yaml/dist/index.js', 'ajv/dist/refs/json-schema-draft-07.json', 'pino/LICENSE',
      'node-opcua-nodesets/nodesets/Opc.Ua.NodeSet2.xml', 'node-opcua-nodesets/nodesets/Opc.Ua.NodeSet2.ndjson.gz',
      'node-opcua-nodesets/nodesets/Opc.Ua.Di.NodeSet2.xml', 'mqtt/build/index.mjs', 'protobufjs/minimal.js']) {
      expect(pruneReason(keep, x64), keep).toBeNull();
    }
    expect(pruneReason('node-opcua-nodesets/nodesets/Opc.Ua.Glass.NodeSet2.xml', x64)).toMatch(/companion/);
    expect(pruneReason('protobufjs/cli', x64, true)).toMatch(/command-line/);
    expect(pruneReason('global-agent/dist/utilities/parseProxyUrl.test.js', x64)).toMatch(/tests/);
    expect(pruneReason('humanize/specs', x64, true)).toMatch(/tests/);
    expect(pruneReason('.bin', x64, true)).toMatch(/bin links/);
  });

  it('recognises binaries the target cannot load', () => {
    expect(foreignBinaryReason('/opt/lineguard/node_modules/onnxruntime-node/bin/napi-v6/win32/x64/onnxruntime.dll', x64)).toBeTruthy();
    expect(foreignBinaryReason('/opt/lineguard/node_modules/onnxruntime-node/bin/napi-v6/darwin/arm64/x.node', x64)).toBeTruthy();
    expect(foreignBinaryReason('/opt/lineguard/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/libonnxruntime.so.1', x64)).toBeTruthy();
    expect(foreignBinaryReason('/opt/lineguard/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1', x64)).toBeNull();
  });
});

describe('Debian metadata and systemd', () => {
  it('writes a control file without the distribution\'s nodejs', () => {
    const control = controlFile({
      npmVersion: '0.1.0', target: x64, depends: ['libc6 (>= 2.34)', 'libstdc++6 (>= 11)', 'systemd'], installedSizeKiB: 1234,
      nodeVersion: NODE_VERSION, maintainer: 'M <m@example.invalid>',
    });
    expect(control).toMatch(/^Package: lineguard\nVersion: 0\.1\.0\nArchitecture: amd64\n/);
    expect(control).toContain('Depends: libc6 (>= 2.34), libstdc++6 (>= 11), systemd\n');
    expect(control).toContain('Installed-Size: 1234\n');
    // Continuation lines of Description start with a space; an empty line would end the paragraph.
    const lines = control.trimEnd().split('\n');
    expect(lines.slice(lines.findIndex((l) => l.startsWith('Description:')) + 1).every((l) => l.startsWith(' ') && l.trim() !== '')).toBe(true);
    expect(() => controlFile({ npmVersion: '0.1.0', target: x64, depends: ['nodejs (>= 20)'], installedSizeKiB: 1, nodeVersion: NODE_VERSION, maintainer: 'M' }))
      .toThrow(/nodejs/);
  });

  it('reads dpkg-shlibdeps output', () => {
    expect(parseShlibdeps('shlibs:Depends=libc6 (>= 2.34), libgcc-s1 (>= 4.3), libstdc++6 (>= 11)\n'))
      .toEqual(['libc6 (>= 2.34)', 'libgcc-s1 (>= 4.3)', 'libstdc++6 (>= 11)']);
    expect(() => parseShlibdeps('nothing')).toThrow();
  });

  it('has the config as its only conffile', () => {
    expect(CONFFILES).toEqual(['/etc/lineguard/lineguard.yaml']);
  });

  it('packages the unit with the packaged Node.js, everything else unchanged', () => {
    const unit = readFileSync('systemd/lineguard.service', 'utf8');
    const packaged = unitForPackage(unit);
    expect(packaged).toContain(`ExecStart=${NODE_BIN} /opt/lineguard/bin/lineguard run --config /etc/lineguard/lineguard.yaml`);
    expect(packaged).not.toContain('/usr/bin/node');
    const changed = unit.split('\n').filter((l, i) => l !== packaged.split('\n')[i]);
    expect(changed).toHaveLength(1);
    expect(() => unitForPackage(unit.replace(/^ExecStart=.*$/m, 'ExecStart=/usr/local/bin/lineguard run'))).toThrow(/unitForPackage/);
  });

  it('launches the CLI with the packaged Node.js whatever node is on the PATH', () => {
    expect(launcherScript()).toMatch(/^#!\/bin\/sh\n/);
    expect(launcherScript()).toContain(`exec ${NODE_BIN} /opt/lineguard/bin/lineguard "$@"`);
  });

  it('ships sysusers and tmpfiles entries matching the unit (user lineguard, state dir 0750)', () => {
    expect(readFileSync('systemd/lineguard.sysusers.conf', 'utf8')).toMatch(/^u lineguard - .* \/var\/lib\/lineguard \/usr\/sbin\/nologin$/m);
    const tmpfiles = readFileSync('systemd/lineguard.tmpfiles.conf', 'utf8');
    expect(tmpfiles).toMatch(/^d \/var\/lib\/lineguard\s+0750 lineguard lineguard -$/m);
    expect(tmpfiles).toMatch(/^d \/etc\/lineguard\/credentials\s+0750 root\s+root\s+-$/m);
    // Every LoadCredential= file of the unit exists after installation (a missing one stops the unit from starting).
    const unit = readFileSync('systemd/lineguard.service', 'utf8');
    const creds = [...unit.matchAll(/^LoadCredential=[^:]+:(.+)$/gm)].map((m) => m[1]);
    expect(creds.length).toBeGreaterThan(0);
    for (const file of creds) expect(tmpfiles, file).toMatch(new RegExp(`^f ${file}\\s+0600 root root -$`, 'm'));
  });
});

describe('maintainer scripts', () => {
  const script = (name: string) => readFileSync(`packaging/debian/${name}`, 'utf8');

  it('are valid POSIX shell with set -e', () => {
    for (const name of ['postinst', 'prerm', 'postrm']) {
      expect(spawnSync('sh', ['-n', `packaging/debian/${name}`]).status, name).toBe(0);
      expect(script(name)).toMatch(/^#!\/bin\/sh\n/);
      expect(script(name)).toMatch(/^set -e$/m);
    }
  });

  it('postinst creates the user and directories and reloads systemd, never enables or starts the service', () => {
    const postinst = script('postinst');
    expect(postinst).toMatch(/systemd-sysusers .*lineguard\.conf/);
    expect(postinst).toMatch(/systemd-tmpfiles .*--create lineguard\.conf/);
    expect(postinst).toMatch(/systemctl daemon-reload/);
    const code = postinst.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
    expect(code).not.toMatch(/systemctl (start|enable|restart|reload-or-restart)\b/);
    // An upgrade restarts a running service only (try-restart does not start a stopped one).
    expect(code).toMatch(/if \[ -n "\$2" \]; then\s+systemctl try-restart lineguard\.service/);
  });

  it('never delete the state directory (buffer with undelivered alerts, PKI), not even on purge', () => {
    for (const name of ['prerm', 'postrm']) {
      const code = script(name).split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
      expect(code, name).not.toMatch(/\/var\/lib\/lineguard/);
    }
  });
});
