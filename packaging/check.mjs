#!/usr/bin/env node
// npm run package:check: builds the package (packaging/build.mjs) and checks it without installing it on this host.
// Takes minutes; not part of `npm test`.
//
//   node packaging/check.mjs [--deb FILE] [--no-chroot] [build.mjs options: --source, --commit]
//
// 1. dpkg-deb --info / --contents: fields, conffiles, maintainer scripts; unit, launcher, node, schema, models
//    present; no .ts sources, no tests, no binaries for another OS or architecture.
// 2. dpkg -x into an empty temp root: the packaged node runs `lineguard --help`, `check-config` on the packaged
//    example and `model inspect` on a packaged model with an empty environment, far from any node_modules.
// 3. As root with debootstrap (Debian package): a minimal Debian chroot (built once, cached in build/package-check/)
//    with systemd and procps but no nodejs gets `apt-get install ./lineguard_….deb` (downloads blocked); then the user, the
//    directories, `systemd-analyze verify` of the installed unit, /usr/bin/lineguard, the demo line run as the
//    lineguard user, an upgrade that keeps an edited config and the state dir, remove and purge.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CONFFILES, NODE_BIN, PREFIX, debFileName, foreignBinaryReason, hostTarget } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const { values: opts } = parseArgs({
  options: {
    deb: { type: 'string' },
    'no-chroot': { type: 'boolean', default: false },
    source: { type: 'string' },
    commit: { type: 'string' },
  },
});
const target = hostTarget();
const failures = [];
let passed = 0;
const t0 = Date.now();
function check(name, ok, detail = '') {
  if (ok) passed++;
  else failures.push(`${name}${detail ? `: ${detail}` : ''}`);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${!ok && detail ? `\n     ${String(detail).split('\n').join('\n     ')}` : ''}`);
}
function sh(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...options });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '', all: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

// ---- build ----
let deb = opts.deb;
if (!deb) {
  const args = [path.join(HERE, 'build.mjs')];
  if (opts.source) args.push('--source', opts.source);
  if (opts.commit) args.push('--commit', opts.commit);
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: REPO });
  if (r.status !== 0) process.exit(1);
  const pkg = JSON.parse(execFileSync('git', ['show', `${opts.commit ?? 'HEAD'}:package.json`], { cwd: REPO, encoding: 'utf8' }));
  deb = path.join(REPO, 'build', debFileName(pkg.version, target));
}
console.log(`\nchecking ${path.relative(process.cwd(), deb)} (${(statSync(deb).size / 1e6).toFixed(1)} MB)`);

// ---- 1. metadata and contents ----
const field = (name) => sh('dpkg-deb', ['--field', deb, name]).out.trim();
check('Package: lineguard', field('Package') === 'lineguard');
check(`Architecture: ${target.debArch}`, field('Architecture') === target.debArch);
const depends = field('Depends');
check('Depends names no nodejs, and systemd', !/\bnodejs\b/.test(depends) && /\bsystemd\b/.test(depends), depends);
const conffiles = sh('dpkg-deb', ['--ctrl-tarfile', deb]).code === 0
  ? execFileSync('sh', ['-c', `dpkg-deb --ctrl-tarfile "${deb}" | tar -xO ./conffiles`], { encoding: 'utf8' }).trim().split('\n') : [];
check('conffiles: exactly /etc/lineguard/lineguard.yaml', JSON.stringify(conffiles) === JSON.stringify(CONFFILES), conffiles.join(' '));
const ctrl = execFileSync('sh', ['-c', `dpkg-deb --ctrl-tarfile "${deb}" | tar -t`], { encoding: 'utf8' });
check('maintainer scripts postinst, prerm, postrm', ['postinst', 'prerm', 'postrm'].every((s) => ctrl.includes(`./${s}`)), ctrl);
const postinst = execFileSync('sh', ['-c', `dpkg-deb --ctrl-tarfile "${deb}" | tar -xO ./postinst`], { encoding: 'utf8' });
check('postinst creates the user and reloads systemd, starts and enables nothing',
  /systemd-sysusers/.test(postinst) && /daemon-reload/.test(postinst) && !/systemctl[^\n]*\b(start|enable|restart)\b/.test(postinst.replace(/try-restart/g, '')));

const contents = sh('dpkg-deb', ['--contents', deb]).out.split('\n').filter(Boolean);
const paths = contents.map((l) => l.slice(l.indexOf('./') + 1).replace(/ -> .*$/, ''));
const has = (p) => paths.includes(p);
for (const p of [
  '/usr/bin/lineguard', '/usr/lib/systemd/system/lineguard.service', '/usr/lib/sysusers.d/lineguard.conf',
  '/usr/lib/tmpfiles.d/lineguard.conf', '/etc/lineguard/lineguard.yaml', '/usr/share/doc/lineguard/lineguard.example.yaml',
  '/usr/share/doc/lineguard/copyright', NODE_BIN, `${PREFIX}/bin/lineguard`, `${PREFIX}/dist/src/daemon/cli.js`,
  `${PREFIX}/schema/lineguard.schema.json`, `${PREFIX}/models/ai4i-fault/model.onnx`, `${PREFIX}/models/cmapss-rul/model.onnx`,
  `${PREFIX}/models/ai4i-fault/README.md`, `${PREFIX}/node_modules/better-sqlite3/build/Release/better_sqlite3.node`,
  `${PREFIX}/node_modules/onnxruntime-node/bin/napi-v6/${target.ortDir}/libonnxruntime.so.1`,
]) check(`contains ${p}`, has(p));
const ts = paths.filter((p) => /\.(ts|mts|cts)$/.test(p));
check('no TypeScript sources or declarations', ts.length === 0, ts.slice(0, 5).join('\n'));
const tests = paths.filter((p) => !p.endsWith('/')).filter((p) => /\/(test|tests|__tests__)\//.test(p) || /\.(test|spec)\.[cm]?js$/.test(p));
check('no test files', tests.length === 0, tests.slice(0, 5).join('\n'));
const foreign = paths.map((p) => [p, foreignBinaryReason(p, target)]).filter(([, r]) => r);
check(`no binaries for another OS or architecture than linux/${target.nodeArch}`, foreign.length === 0, foreign.slice(0, 5).map(([p, r]) => `${p} (${r})`).join('\n'));
const modes = Object.fromEntries(contents.map((l) => [l.slice(l.indexOf('./') + 1).replace(/\/$/, '').replace(/ -> .*$/, ''), l.split(/\s+/)[0] + ' ' + l.split(/\s+/)[1]]));
check('/etc/lineguard/credentials is drwxr-x--- root/root', modes['/etc/lineguard/credentials'] === 'drwxr-x--- root/root', modes['/etc/lineguard/credentials']);
check('files owned by root', contents.every((l) => l.split(/\s+/)[1] === 'root/root'));

// ---- 2. scratch root ----
const scratch = mkdtempSync(path.join(tmpdir(), 'lineguard-pkg-'));
try {
  execFileSync('dpkg', ['-x', deb, scratch]);
  const node = path.join(scratch, NODE_BIN);
  const cli = path.join(scratch, PREFIX, 'bin/lineguard');
  const run = (...args) => sh(node, [cli, ...args], { cwd: scratch, env: {}, timeout: 120_000 });
  const help = run('--help');
  check('scratch root: packaged node runs `lineguard --help` (empty environment)', help.code === 0 && /check-config/.test(help.out), help.all);
  const ver = sh(node, ['-p', 'process.version'], { env: {} });
  check(`scratch root: packaged node is ${ver.out.trim()}`, /^v2[24]\./.test(ver.out.trim()), ver.all);
  const example = path.join(scratch, 'usr/share/doc/lineguard/lineguard.example.yaml');
  const cc = run('check-config', example);
  check('scratch root: `check-config` on the packaged example', cc.code === 0 && /OK/.test(cc.out), cc.all);
  const conf = path.join(scratch, 'etc/lineguard/lineguard.yaml');
  check('scratch root: the conffile is the example config', readFileSync(conf, 'utf8') === readFileSync(example, 'utf8'));
  const mi = run('model', 'inspect', path.join(scratch, PREFIX, 'models/ai4i-fault/model.onnx'));
  check('scratch root: `model inspect` on a packaged model (cpu loads)', mi.code === 0 && /cpu\s+ok/.test(mi.out), mi.all);
  const schema = run('schema');
  check('scratch root: `lineguard schema` equals the packaged JSON Schema',
    schema.code === 0 && JSON.stringify(JSON.parse(schema.out)) === JSON.stringify(JSON.parse(readFileSync(path.join(scratch, PREFIX, 'schema/lineguard.schema.json'), 'utf8'))), schema.err);
  const launcher = readFileSync(path.join(scratch, 'usr/bin/lineguard'), 'utf8');
  check('/usr/bin/lineguard execs the packaged node', launcher.includes(`exec ${NODE_BIN} ${PREFIX}/bin/lineguard "$@"`), launcher);
  const unit = readFileSync(path.join(scratch, 'usr/lib/systemd/system/lineguard.service'), 'utf8');
  check('the unit runs the packaged node', unit.includes(`ExecStart=${NODE_BIN} ${PREFIX}/bin/lineguard run`) && !unit.includes('/usr/bin/node'));
  if (sh('systemd-analyze', ['--version']).code === 0) {
    // On this host /opt/lineguard does not exist: verify a copy that points at the extracted node (the chroot test
    // below verifies the installed unit as it is).
    const copy = path.join(scratch, 'lineguard.service');
    writeFileSync(copy, unit.replaceAll(NODE_BIN, node));
    const v = sh('systemd-analyze', ['verify', copy]);
    check('systemd-analyze verify on the packaged unit', v.code === 0 && v.all.trim() === '', v.all);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

// ---- 3. install into a Debian chroot ----
const canChroot = process.getuid?.() === 0 && sh('sh', ['-c', 'command -v debootstrap && command -v unshare']).code === 0;
if (opts['no-chroot'] || !canChroot) {
  console.log(`skip chroot install test (${opts['no-chroot'] ? '--no-chroot' : 'needs root, debootstrap and unshare'})`);
} else {
  const cache = path.join(REPO, 'build', 'package-check');
  const base = path.join(cache, 'bookworm-base');
  mkdirSync(cache, { recursive: true });
  if (!existsSync(path.join(base, '.ready'))) {
    console.log('building the chroot base (debootstrap --variant=minbase bookworm, then systemd; once, ~1-2 min)');
    rmSync(`${base}.tmp`, { recursive: true, force: true });
    const d = sh('nice', ['-n', '15', 'debootstrap', '--variant=minbase', 'bookworm', `${base}.tmp`, 'http://deb.debian.org/debian'], { stdio: 'inherit' });
    if (d.code !== 0) throw new Error('debootstrap failed');
    const s = sh('chroot', [`${base}.tmp`, 'sh', '-c', 'apt-get install -y -qq --no-install-recommends systemd procps >/dev/null && apt-get clean'], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive' }, stdio: 'inherit' });
    if (s.code !== 0) throw new Error('installing systemd into the chroot base failed');
    writeFileSync(path.join(`${base}.tmp`, '.ready'), '');
    renameSync(`${base}.tmp`, base);
  }
  const root = path.join(cache, `root-${process.pid}`);
  execFileSync('cp', ['-a', base, root]);
  try {
    execFileSync('cp', [deb, path.join(root, 'tmp/lineguard.deb')]);
    // A second version of the same tree, for the upgrade path (dpkg-deb -R / -b, version + "+check").
    const up = path.join(root, 'tmp/up');
    execFileSync('dpkg-deb', ['-R', deb, up]);
    const ctl = readFileSync(path.join(up, 'DEBIAN/control'), 'utf8').replace(/^Version: (.*)$/m, 'Version: $1+check');
    writeFileSync(path.join(up, 'DEBIAN/control'), ctl);
    execFileSync('dpkg-deb', ['--root-owner-group', '-Znone', '-b', up, path.join(root, 'tmp/lineguard-upgrade.deb')], { stdio: 'ignore' });
    rmSync(up, { recursive: true, force: true });
    const inRoot = (script, timeout = 180_000) => sh('unshare', ['--mount', '--fork', 'sh', '-c',
      `mount -t proc proc "${root}/proc" && mount --rbind /dev "${root}/dev" && exec chroot "${root}" /bin/sh -c "$0"`, script],
    { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LANG: 'C.UTF-8' }, timeout });

    const nodeBefore = inRoot('command -v node nodejs; dpkg -l nodejs 2>/dev/null | grep ^ii');
    check('chroot: no Node.js installed before', nodeBefore.out.trim() === '', nodeBefore.out);
    // Every download would go to a proxy that does not exist: the install must need nothing but the .deb.
    const apt = 'apt-get -o Acquire::http::Proxy=http://127.0.0.1:9 -o Acquire::https::Proxy=http://127.0.0.1:9';
    const inst = inRoot(`cd /tmp && ${apt} install -y ./lineguard.deb`);
    check('chroot: apt-get install ./lineguard.deb with the network blocked', inst.code === 0, inst.all.slice(-2000));
    const user = inRoot('getent passwd lineguard; stat -c "%U:%G %a %n" /var/lib/lineguard /etc/lineguard /etc/lineguard/credentials');
    check('chroot: user lineguard (nologin) and directories',
      /^lineguard:x:\d+:\d+:[^:]*:\/var\/lib\/lineguard:\/usr\/sbin\/nologin$/m.test(user.out)
      && /lineguard:lineguard 750 \/var\/lib\/lineguard/.test(user.out) && /root:root 755 \/etc\/lineguard\n/.test(user.out)
      && /root:root 750 \/etc\/lineguard\/credentials/.test(user.out), user.all);
    const enabled = inRoot('ls /etc/systemd/system/multi-user.target.wants/ 2>/dev/null | grep -c lineguard || true');
    check('chroot: the service is not enabled by installing', enabled.out.trim() === '0', enabled.all);
    const help = inRoot('env -i /usr/bin/lineguard --help');
    check('chroot: /usr/bin/lineguard --help', help.code === 0 && /check-config/.test(help.out), help.all);
    const cc = inRoot('env -i /usr/bin/lineguard check-config /etc/lineguard/lineguard.yaml');
    check('chroot: check-config /etc/lineguard/lineguard.yaml', cc.code === 0, cc.all);
    const mi = inRoot('env -i /usr/sbin/runuser -u lineguard -- /usr/bin/lineguard model inspect /opt/lineguard/models/cmapss-rul/model.onnx');
    check('chroot: model inspect as the lineguard user', mi.code === 0 && /cpu\s+ok/.test(mi.out), mi.all);
    const va = inRoot('systemd-analyze verify /usr/lib/systemd/system/lineguard.service');
    check('chroot: systemd-analyze verify on the installed unit', va.code === 0 && va.all.trim() === '', va.all);
    const demo = inRoot('cd /tmp && env -i /usr/sbin/runuser -u lineguard -- /usr/bin/lineguard demo --duration-s 45 --state-dir /tmp/demo-state 2>&1', 120_000);
    check('chroot: `lineguard demo` as the lineguard user raises and clears an alert and stops cleanly',
      demo.code === 0 && /RAISED .*press-fault/.test(demo.out) && /CLEARED .*press-fault/.test(demo.out) && /demo stopped:/.test(demo.out),
      demo.all.slice(-3000));
    const edit = inRoot('printf "# edited on site\\n" >> /etc/lineguard/lineguard.yaml && mkdir -p /var/lib/lineguard/pki/trusted/certs && touch /var/lib/lineguard/pki/trusted/certs/plc.der && printf s3cret > /etc/lineguard/credentials/mqtt-password');
    const upg = inRoot(`cd /tmp && ${apt} install -y ./lineguard-upgrade.deb`);
    const after = inRoot('tail -1 /etc/lineguard/lineguard.yaml; ls /var/lib/lineguard/pki/trusted/certs; cat /etc/lineguard/credentials/mqtt-password; echo; dpkg-query -W -f "\\${Version}" lineguard');
    check('chroot: upgrade keeps the edited config, the PKI and the credentials', edit.code === 0 && upg.code === 0
      && /# edited on site\nplc\.der\ns3cret\n.*\+check$/.test(after.out), `${upg.all.slice(-1500)}\n${after.all}`);
    const rm = inRoot(`${apt} remove -y lineguard >/dev/null && test ! -e /opt/lineguard && test ! -e /usr/bin/lineguard && test -f /etc/lineguard/lineguard.yaml && test -d /var/lib/lineguard/pki && echo removed-ok`);
    check('chroot: remove takes the program, keeps config and state', /removed-ok/.test(rm.out), rm.all);
    const purge = inRoot(`${apt} purge -y lineguard >/dev/null && test ! -e /etc/lineguard/lineguard.yaml && test -d /var/lib/lineguard/pki && echo purged-ok`);
    check('chroot: purge removes the conffile, keeps the state dir (alerts not yet sent, PKI)', /purged-ok/.test(purge.out), purge.all);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

console.log(`\n${passed} passed, ${failures.length} failed (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
console.log(`package: ${deb} ${(statSync(deb).size / 1e6).toFixed(1)} MB, installed ${field('Installed-Size')} KiB`);
if (failures.length) {
  console.log(`failed:\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
