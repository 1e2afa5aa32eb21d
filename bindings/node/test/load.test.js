'use strict';
// Finding the library: LIBSESSION_LIBRARY (a path) when set, else the soname
// libsession.so.0 through the dynamic loader; a clear error naming both otherwise.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { it } = require('node:test');
const { BUILT } = require('./helpers');

const INDEX = path.resolve(__dirname, '..', 'index.js');
const PROBE = `const s = require(${JSON.stringify(INDEX)});
console.log(JSON.stringify({ path: s.binding.libraryPath, version: s.version(), id: s.createId() }));`;

/**
 * Runs the probe in a fresh node with `env` over this environment less
 * LIBSESSION_LIBRARY and any LD_LIBRARY_PATH directory that holds libsession.so.0.
 */
function probe(env) {
  const base = { ...process.env };
  delete base.LIBSESSION_LIBRARY;
  const dirs = (base.LD_LIBRARY_PATH || '').split(':')
    .filter((dir) => dir !== '' && !fs.existsSync(path.join(dir, 'libsession.so.0')));
  if (dirs.length > 0) base.LD_LIBRARY_PATH = dirs.join(':');
  else delete base.LD_LIBRARY_PATH;
  const run = spawnSync(process.execPath, ['-e', PROBE], {
    env: { ...base, ...env },
    encoding: 'utf8',
  });
  return { status: run.status, out: run.stdout, err: run.stderr };
}

/** LD_LIBRARY_PATH with the built library's directory first. */
function loaderPath() {
  return [path.dirname(BUILT), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
}

/** Whether the system's loader cache knows libsession.so.0 (an installed library). */
function installed() {
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    const run = spawnSync(ldconfig, ['-p'], { encoding: 'utf8' });
    if (run.status === 0) return /\blibsession\.so\.0\b/.test(run.stdout);
  }
  return false;
}

it('LIBSESSION_LIBRARY names the library', () => {
  const run = probe({ LIBSESSION_LIBRARY: BUILT });
  assert.equal(run.status, 0, run.err);
  const got = JSON.parse(run.out);
  assert.equal(got.path, BUILT);
  assert.match(got.version, /^\d+\.\d+\.\d+$/);
  assert.match(got.id, /^[0-9a-f]{64}$/);
});

it('without it, the soname through the loader (LD_LIBRARY_PATH here)', () => {
  const run = probe({ LD_LIBRARY_PATH: loaderPath() });
  assert.equal(run.status, 0, run.err);
  assert.equal(JSON.parse(run.out).path, 'libsession.so.0');
});

it('a LIBSESSION_LIBRARY that does not load: an error naming it and the soname', () => {
  const bad = '/nonexistent/dir/libsession.so.0';
  const run = probe({ LIBSESSION_LIBRARY: bad, LD_LIBRARY_PATH: loaderPath() });
  assert.notEqual(run.status, 0);
  assert.match(run.err, /libsession: cannot load LIBSESSION_LIBRARY=\/nonexistent\/dir\/libsession\.so\.0/);
  assert.match(run.err, /unset it to load libsession\.so\.0 by its soname/);
});

it('neither: an error naming the soname and LIBSESSION_LIBRARY', () => {
  const run = probe({});
  if (installed()) {
    // An installed library (cmake --install + ldconfig) is found by its soname.
    assert.equal(run.status, 0, run.err);
    assert.equal(JSON.parse(run.out).path, 'libsession.so.0');
    return;
  }
  assert.notEqual(run.status, 0);
  assert.match(run.err, /cannot load libsession\.so\.0 by its soname/);
  assert.match(run.err, /LIBSESSION_LIBRARY is not set/);
  assert.match(run.err, /set LIBSESSION_LIBRARY to the path of libsession\.so\.0/);
});

it('a library without the functions of this binding is refused by name', () => {
  // A path (a bare name would mean a file in the working directory).
  const libc = ['/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libc.so.6',
    '/lib/aarch64-linux-gnu/libc.so.6', '/lib64/libc.so.6', '/usr/lib64/libc.so.6']
    .find((p) => require('fs').existsSync(p));
  assert.ok(libc, 'no libc.so.6 found');
  const run = probe({ LIBSESSION_LIBRARY: libc });
  assert.notEqual(run.status, 0);
  assert.match(run.err, /libc\.so\.6 has no usable session_create/);
});

it('a bare LIBSESSION_LIBRARY name is a file in the working directory', () => {
  const run = probe({ LIBSESSION_LIBRARY: 'libc.so.6' });
  assert.notEqual(run.status, 0);
  assert.match(run.err, /cannot load LIBSESSION_LIBRARY=\/.*\/libc\.so\.6/);
});
