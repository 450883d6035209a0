#!/usr/bin/env node
// npm run package: builds build/lineguard_<version>_<arch>.deb and build/lineguard-<version>-linux-<arch>.tar.gz.
// See packaging/README.md. Works in build/package-<arch>/ only: the checkout's own node_modules is never touched.
//
//   node packaging/build.mjs [--source head|worktree] [--commit REV] [--out DIR] [--no-tar]
//
// --source head (default in a git checkout): a commit (`git archive`, --commit, default HEAD, e.g. a release tag), so
// a package never contains uncommitted work; worktree: the files of the working tree (tracked and
// untracked-but-not-ignored). The compiled application is reused while the commit and the Node.js version stay.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync,
  statSync, symlinkSync, lutimesSync, writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  CONFFILES, NODE_VERSION, PREFIX, TARGETS, appFileDestination, checkNodeVersion, controlFile, debFileName, hostTarget,
  launcherScript, packageJsonForRuntime, parseShlibdeps, pruneReason, tarFileName, unitForPackage,
} from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');

const { values: opts } = parseArgs({
  options: {
    source: { type: 'string' },
    commit: { type: 'string', default: 'HEAD' },
    out: { type: 'string', default: path.join(REPO, 'build') },
    arch: { type: 'string' },
    'no-tar': { type: 'boolean', default: false },
  },
});

const t0 = Date.now();
const log = (msg) => console.log(`[package ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}`);
const fail = (msg) => {
  console.error(`package: ${msg}`);
  process.exit(1);
};

const target = hostTarget();
if (!target) fail(`no package target for this machine's architecture (${process.arch}); targets: ${Object.keys(TARGETS).join(', ')}`);
if (opts.arch && opts.arch !== target.debArch) {
  fail(`cannot build the ${opts.arch} package on ${target.debArch}: the native modules (better-sqlite3) are compiled `
    + `and load-tested on the target architecture; cross-building them is not supported. Run this on an ${opts.arch} machine (packaging/README.md).`);
}
const nodeVersion = checkNodeVersion(process.env.LINEGUARD_NODE_VERSION || NODE_VERSION);
for (const tool of ['dpkg-deb', 'dpkg-shlibdeps', 'strip', 'tar', 'gzip', 'git']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    fail(`${tool} is missing (apt-get install dpkg-dev binutils tar gzip git)`);
  }
}

const WORK = path.join(REPO, 'build', `package-${target.debArch}`);
const NODE_DIR = path.join(WORK, `node-${nodeVersion}`);
const NODE_PKG = path.join(NODE_DIR, 'node_modules', target.nodePackage);
const NODE = path.join(NODE_PKG, 'bin', 'node');
const APP = path.join(WORK, 'app');
const ROOT = path.join(WORK, 'root');
mkdirSync(WORK, { recursive: true });
mkdirSync(opts.out, { recursive: true });

function run(cmd, args, { cwd = REPO, env = process.env, nice = false, capture = false } = {}) {
  const argv = nice ? ['nice', ['-n', '15', cmd, ...args]] : [cmd, args];
  const r = spawnSync(argv[0], argv[1], { cwd, env, stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit', encoding: 'utf8' });
  if (r.status !== 0) {
    fail(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})${capture ? `\n${r.stdout}${r.stderr}` : ''}`);
  }
  return capture ? r.stdout : '';
}

// ---- 1. The Node.js runtime: the registry's node-linux-<arch> package (a binary, headers in include/node). ----
if (!existsSync(NODE) || spawnSync(NODE, ['--version'], { encoding: 'utf8' }).stdout.trim() !== `v${nodeVersion}`) {
  log(`fetching ${target.nodePackage}@${nodeVersion} from the npm registry`);
  rmSync(NODE_DIR, { recursive: true, force: true });
  mkdirSync(NODE_DIR, { recursive: true });
  writeFileSync(path.join(NODE_DIR, 'package.json'), '{ "private": true }\n');
  run('npm', ['install', '--no-save', '--no-package-lock', '--ignore-scripts', '--no-audit', '--no-fund', `${target.nodePackage}@${nodeVersion}`], { cwd: NODE_DIR });
}
if (!existsSync(path.join(NODE_PKG, 'include', 'node', 'node_api.h'))) fail(`${NODE_PKG} has no include/node: cannot compile native modules against it`);

// ---- 2. The application: source, npm ci (dev dependencies too, to compile), then prune to production. ----
const source = opts.source ?? (existsSync(path.join(REPO, '.git')) ? 'head' : 'worktree');
if (source !== 'head' && source !== 'worktree') fail('--source must be head or worktree');
const commit = source === 'head' ? run('git', ['rev-parse', '--verify', `${opts.commit}^{commit}`], { capture: true }).trim() : undefined;
const epoch = Number(process.env.SOURCE_DATE_EPOCH || (commit ? run('git', ['log', '-1', '--format=%ct', commit], { capture: true }).trim() : Math.floor(Date.now() / 1000)));
const stampOf = () => JSON.stringify({ commit, nodeVersion, arch: target.debArch });
const stampFile = path.join(APP, '.lineguard-package-stamp');
if (source === 'head' && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stampOf()) {
  log(`application already built from ${commit.slice(0, 12)} for node ${nodeVersion}: reusing ${path.relative(REPO, APP)}`);
} else {
  rmSync(APP, { recursive: true, force: true });
  mkdirSync(APP, { recursive: true });
  if (source === 'head') {
    log(`source: git archive ${commit.slice(0, 12)} (${opts.commit})`);
    const tar = execFileSync('git', ['archive', '--format=tar', commit], { cwd: REPO, maxBuffer: 1 << 30 });
    execFileSync('tar', ['-x', '-C', APP], { input: tar });
  } else {
    log('source: working tree (tracked and untracked files, minus .gitignore)');
    const files = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { capture: true }).split('\0').filter(Boolean);
    for (const f of files) {
      if (!existsSync(path.join(REPO, f))) continue;
      mkdirSync(path.dirname(path.join(APP, f)), { recursive: true });
      copyFileSync(path.join(REPO, f), path.join(APP, f));
      chmodSync(path.join(APP, f), statSync(path.join(REPO, f)).mode & 0o777);
    }
  }
  // npm runs install scripts (better-sqlite3's node-gyp build) with the packaged Node first on the PATH, against
  // its headers: this machine's npm config says nodedir=/usr (Node 20's headers), which would give an addon that
  // fails with "Module did not self-register" under Node 24.
  const env = {
    ...process.env,
    PATH: `${path.join(NODE_PKG, 'bin')}:${process.env.PATH}`,
    npm_config_nodedir: NODE_PKG,
    ONNXRUNTIME_NODE_INSTALL: 'skip',
    npm_config_update_notifier: 'false',
  };
  log(`npm ci in ${path.relative(REPO, APP)} with node ${nodeVersion} (compiles better-sqlite3: a few minutes)`);
  run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: APP, env, nice: true });
  if (!existsSync(path.join(APP, 'dist', 'src', 'daemon', 'cli.js'))) fail('npm ci did not build dist/ (the prepare script)');
  run('npm', ['prune', '--omit=dev', '--no-audit', '--no-fund'], { cwd: APP, env });
  writeFileSync(stampFile, stampOf());
}
const pkg = JSON.parse(readFileSync(path.join(APP, 'package.json'), 'utf8'));
log(`lineguard ${pkg.version}, node ${nodeVersion}, ${target.debArch}`);

// ---- 3. The tree. ----
rmSync(ROOT, { recursive: true, force: true });
const rootPath = (abs) => path.join(ROOT, abs);
const put = (abs, content, mode = 0o644) => {
  mkdirSync(path.dirname(rootPath(abs)), { recursive: true });
  writeFileSync(rootPath(abs), content);
  chmodSync(rootPath(abs), mode);
};
const copy = (from, abs, mode) => {
  mkdirSync(path.dirname(rootPath(abs)), { recursive: true });
  copyFileSync(from, rootPath(abs));
  chmodSync(rootPath(abs), mode ?? (statSync(from).mode & 0o111 ? 0o755 : 0o644));
};

function walk(dir, rel = '') {
  const out = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(dir, r));
    else out.push(r);
  }
  return out;
}

for (const rel of walk(APP).filter((r) => !r.startsWith('node_modules/'))) {
  const dest = appFileDestination(rel);
  if (dest) copy(path.join(APP, rel), dest, rel === 'bin/lineguard' ? 0o755 : 0o644);
}
put(`${PREFIX}/package.json`, `${JSON.stringify(packageJsonForRuntime(pkg), null, 2)}\n`);

function sizeOf(p) {
  const st = lstatSync(p);
  return st.isDirectory() ? readdirSync(p).reduce((n, e) => n + sizeOf(path.join(p, e)), 0) : st.size;
}

// node_modules: production dependencies minus what cannot run on the target or is never loaded.
const pruned = new Map();
function copyModules(rel) {
  const from = path.join(APP, 'node_modules', rel);
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    const src = path.join(from, e.name);
    const reason = pruneReason(r, target, e.isDirectory());
    if (reason) {
      const size = sizeOf(src);
      pruned.set(reason, (pruned.get(reason) ?? 0) + size);
      continue;
    }
    const dest = rootPath(`${PREFIX}/node_modules/${r}`);
    if (e.isDirectory()) {
      mkdirSync(dest, { recursive: true });
      copyModules(r);
    } else if (e.isSymbolicLink()) {
      mkdirSync(path.dirname(dest), { recursive: true });
      symlinkSync(readlinkSync(src), dest);
    } else {
      mkdirSync(path.dirname(dest), { recursive: true });
      copyFileSync(src, dest);
      chmodSync(dest, statSync(src).mode & 0o111 ? 0o755 : 0o644);
    }
  }
}
copyModules('');
// Directories left empty by pruning (e.g. types/tests/ of a package whose .d.ts files went) are dropped too.
function dropEmpty(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) dropEmpty(path.join(dir, e.name));
  if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
}
dropEmpty(rootPath(`${PREFIX}/node_modules`));

// Node.js: the binary and its licence (headers, man page and docs are not needed to run).
copy(NODE, `${PREFIX}/node/bin/node`, 0o755);
copy(path.join(NODE_PKG, 'LICENSE'), `${PREFIX}/node/LICENSE`, 0o644);
// Debug information is most of the weight of an unstripped binary; the dynamic symbol table that addons link
// against stays (--strip-unneeded). The addons are load-tested below with the stripped binary.
const natives = [
  `${PREFIX}/node/bin/node`,
  `${PREFIX}/node_modules/better-sqlite3/build/Release/better_sqlite3.node`,
  `${PREFIX}/node_modules/onnxruntime-node/bin/napi-v6/${target.ortDir}/onnxruntime_binding.node`,
];
for (const f of natives) {
  if (!existsSync(rootPath(f))) fail(`missing native file ${f}`);
  run('strip', ['--strip-unneeded', rootPath(f)]);
}

// systemd, the launcher, docs.
put('/usr/bin/lineguard', launcherScript(), 0o755);
put('/usr/lib/systemd/system/lineguard.service', unitForPackage(readFileSync(path.join(APP, 'systemd', 'lineguard.service'), 'utf8')));
for (const f of ['lineguard.sysusers.conf', 'lineguard.tmpfiles.conf']) {
  if (!existsSync(path.join(APP, 'systemd', f))) fail(`systemd/${f} is missing in the source (${source}); commit it first or use --source worktree`);
}

// The packaged gateway must run from the tree with the packaged Node alone: no PATH, no checkout's node_modules.
const packagedNode = rootPath(`${PREFIX}/node/bin/node`);
const cli = rootPath(`${PREFIX}/bin/lineguard`);
const example = execFileSync(packagedNode, [cli, 'example-config'], { cwd: '/', env: {}, encoding: 'utf8' });
put('/usr/share/doc/lineguard/lineguard.example.yaml', example);
put('/etc/lineguard/lineguard.yaml', example);
mkdirSync(rootPath('/etc/lineguard/credentials'), { recursive: true });
const smoke = `
import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(rootPath(`${PREFIX}/package.json`))});
const Database = require('better-sqlite3');
const db = new Database(':memory:');
const { v } = db.prepare('select sqlite_version() as v').get();
const ort = require('onnxruntime-node');
const s = await ort.InferenceSession.create(${JSON.stringify(rootPath(`${PREFIX}/models/ai4i-fault/model.onnx`))}, { executionProviders: ['cpu'] });
console.log(\`node \${process.version} (ABI \${process.versions.modules}), better-sqlite3 with SQLite \${v}, onnxruntime-node \${require('onnxruntime-node/package.json').version}: session inputs \${s.inputNames.join(',')}\`);
`;
log(`load test with the packaged node: ${execFileSync(packagedNode, ['--input-type=module', '-e', smoke], { cwd: '/', env: {}, encoding: 'utf8' }).trim()}`);

// copyright: Lineguard's own licence and every bundled component's, for the site's audit.
const modules = [];
for (const rel of walk(rootPath(`${PREFIX}/node_modules`)).filter((r) => /(^|\/)package\.json$/.test(r))) {
  try {
    const p = JSON.parse(readFileSync(rootPath(`${PREFIX}/node_modules/${rel}`), 'utf8'));
    const dir = path.dirname(rel);
    if (p.name && p.version && (dir === p.name || dir.endsWith(`/node_modules/${p.name}`))) {
      modules.push(`  ${p.name}@${p.version}: ${typeof p.license === 'string' ? p.license : JSON.stringify(p.license ?? 'see its folder')}`);
    }
  } catch { /* not a package manifest */ }
}
put('/usr/share/doc/lineguard/copyright', [
  `Lineguard ${pkg.version}: licence ${pkg.license}.`,
  '',
  `Node.js ${nodeVersion} (MIT and bundled licences): ${PREFIX}/node/LICENSE`,
  `Models and their data: ${PREFIX}/models/README.md and models/data/*/PROVENANCE.md (AI4I 2020: CC BY 4.0).`,
  `npm packages in ${PREFIX}/node_modules (each folder holds its licence file):`,
  ...[...new Set(modules)].sort(),
  '',
].join('\n'));

// Ownership root:root comes from dpkg-deb --root-owner-group / tar --owner=0; modes and times are fixed here.
function normalise(abs) {
  const st = lstatSync(abs);
  if (st.isDirectory()) {
    chmodSync(abs, abs === rootPath('/etc/lineguard/credentials') ? 0o750 : 0o755);
    for (const e of readdirSync(abs)) normalise(path.join(abs, e));
  }
  lutimesSync(abs, epoch, epoch);
}

// ---- 4. DEBIAN/ and the .deb. ----
const files = walk(ROOT).sort();
let installedKiB = 0;
for (const f of files) installedKiB += Math.ceil(lstatSync(path.join(ROOT, f)).size / 1024);
mkdirSync(rootPath('/DEBIAN'));
const shl = run('dpkg-shlibdeps', ['-O', `-S${ROOT}`, ...natives.map(rootPath), rootPath(`${PREFIX}/node_modules/onnxruntime-node/bin/napi-v6/${target.ortDir}/libonnxruntime.so.1`)], {
  cwd: (() => {
    const d = path.join(WORK, 'shlibdeps');
    mkdirSync(path.join(d, 'debian'), { recursive: true });
    writeFileSync(path.join(d, 'debian', 'control'), 'Source: lineguard\n\nPackage: lineguard\nArchitecture: any\n');
    return d;
  })(),
  capture: true,
});
// systemd: systemd-sysusers/-tmpfiles in postinst, systemd-notify for READY/WATCHDOG at run time; procps: the
// unit's ExecReload=/bin/kill (systemd-analyze verify fails without it).
const depends = [...parseShlibdeps(shl), 'systemd', 'procps'];
put('/DEBIAN/control', controlFile({
  npmVersion: pkg.version, target, depends, installedSizeKiB: installedKiB, nodeVersion,
  maintainer: process.env.LINEGUARD_MAINTAINER || 'Lineguard maintainers <lineguard@example.invalid>',
}));
put('/DEBIAN/conffiles', `${CONFFILES.join('\n')}\n`);
for (const s of ['postinst', 'prerm', 'postrm']) copy(path.join(HERE, 'debian', s), `/DEBIAN/${s}`, 0o755);
const md5 = files.filter((f) => !lstatSync(path.join(ROOT, f)).isSymbolicLink())
  .map((f) => `${createHash('md5').update(readFileSync(path.join(ROOT, f))).digest('hex')}  ${f}`);
put('/DEBIAN/md5sums', `${md5.join('\n')}\n`);
normalise(ROOT);

const deb = path.join(opts.out, debFileName(pkg.version, target));
log(`dpkg-deb (xz -9: a minute or two) → ${path.relative(REPO, deb)}`);
run('dpkg-deb', ['--root-owner-group', '-Zxz', '-z9', '--build', ROOT, `${deb}.tmp`], { nice: true, env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } });
renameSync(`${deb}.tmp`, deb);

// ---- 5. The same tree as .tar.gz (extract at /): no DEBIAN/, no conffile (an upgrade must not overwrite the
// config), and no system directories (only ours and the files).
let tarball;
if (!opts['no-tar']) {
  tarball = path.join(opts.out, tarFileName(pkg.version, target));
  const own = /^(opt\/lineguard|usr\/share\/doc\/lineguard|etc\/lineguard)(\/|$)/;
  const entries = [];
  const list = (rel) => {
    for (const e of readdirSync(path.join(ROOT, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (r === 'DEBIAN' || CONFFILES.includes(`/${r}`)) continue;
      if (e.isDirectory()) {
        if (own.test(r)) entries.push(r);
        list(r);
      } else entries.push(r);
    }
  };
  list('');
  writeFileSync(path.join(WORK, 'tar-list'), `${entries.sort().join('\n')}\n`);
  log(`tar.gz → ${path.relative(REPO, tarball)}`);
  run('sh', ['-c', `tar --sort=name --owner=0 --group=0 --numeric-owner --no-recursion -C "${ROOT}" -T "${path.join(WORK, 'tar-list')}" -cf - | nice -n 15 gzip -9n > "${tarball}.tmp"`]);
  renameSync(`${tarball}.tmp`, tarball);
}

// ---- 6. Sizes. ----
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
const top = execFileSync('du', ['-sb', ...['node/bin/node', `node_modules/onnxruntime-node/bin/napi-v6/${target.ortDir}`, 'node_modules/better-sqlite3', 'models', 'dist']
  .map((p) => rootPath(`${PREFIX}/${p}`))], { encoding: 'utf8' }).trim().split('\n')
  .map((l) => { const [n, p] = l.split('\t'); return `    ${mb(Number(n)).padStart(9)}  ${path.relative(ROOT, p)}`; });
const rest = Number(execFileSync('du', ['-sb', rootPath(`${PREFIX}/node_modules`)], { encoding: 'utf8' }).split('\t')[0]);
console.log([
  '',
  `${path.relative(process.cwd(), deb)}: ${mb(statSync(deb).size)} (installed ${mb(installedKiB * 1024)}, ${files.length} files)`,
  ...(tarball ? [`${path.relative(process.cwd(), tarball)}: ${mb(statSync(tarball).size)}`] : []),
  '  largest parts (installed):',
  ...top,
  `    ${mb(rest).padStart(9)}  ${PREFIX.slice(1)}/node_modules in all`,
  '  left out of node_modules:',
  ...[...pruned.entries()].sort((a, b) => b[1] - a[1]).map(([r, n]) => `    ${mb(n).padStart(9)}  ${r}`),
  `  Depends: ${depends.join(', ')}`,
  '',
].join('\n'));
