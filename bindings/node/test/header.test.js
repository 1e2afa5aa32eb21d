'use strict';
// include/session.h against the binding: every declared function is bound with the
// header's arity and types, returned `char *` are taken as pointers (to decode and
// free), every function is reachable from the JavaScript API, the error codes match,
// and index.d.ts declares exactly what index.js exports.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { it } = require('node:test');
const { lib, HEADER } = require('./helpers');

const { binding, Store, SessionError } = lib;

/** The function prototypes of a C header: [{ name, ret, params }]. */
function parseHeader(text) {
  const code = text
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/[^\n]*/g, ' ')
    .replace(/^\s*#[^\n]*$/gm, ' ')
    .replace(/extern\s+"C"\s*\{|\}\s*$/g, ' ');
  const functions = [];
  for (const statement of code.split(';')) {
    const m = /^\s*([A-Za-z_][\w\s*]*?)\s*\b(session_\w+)\s*\(([^()]*)\)\s*$/.exec(statement);
    if (!m) continue;
    const params = m[3].trim() === 'void' ? [] : m[3].split(',').map((p) =>
      p.trim().replace(/\s*\b\w+$/, '')); // drop the parameter's name
    functions.push({ name: m[2], ret: norm(m[1]), constRet: /\bconst\b/.test(m[1]), params: params.map(norm) });
  }
  return functions;
}

/** A C type as koffi names it: no const, single spaces, `T *`. */
function norm(type) {
  return type.replace(/\bconst\b/g, ' ').replace(/\s*\*\s*/g, ' *').replace(/\s+/g, ' ').trim();
}

/** What is wrong with the binding of `header`'s functions (empty when nothing). */
function problems(headerText) {
  const found = [];
  const declared = parseHeader(headerText);
  const names = new Set(declared.map((f) => f.name));
  for (const f of declared) {
    const fn = binding.native[f.name];
    if (typeof fn !== 'function') {
      found.push(`${f.name} is declared in session.h but not bound`);
      continue;
    }
    const { result, arguments: args } = fn.info;
    if (args.length !== f.params.length) {
      found.push(`${f.name}: ${args.length} arguments bound, ${f.params.length} declared`);
    }
    f.params.forEach((param, i) => {
      if (args[i] && args[i].type.name !== param) {
        found.push(`${f.name}: argument ${i} bound as ${args[i].type.name}, declared ${param}`);
      }
    });
    // A returned `char *` is malloc'd: it must come back as a pointer to decode and
    // free. A `const char *` belongs to the library: decoded as is, never freed.
    const owned = f.ret === 'char *' && !f.constRet;
    const want = owned ? 'owned_string_t' : f.ret;
    if (result.name !== want) {
      found.push(`${f.name}: returns ${result.name} in the binding, want ${want}`);
    }
    if (!(f.name in binding.calls)) {
      found.push(`${f.name} is reached by no JavaScript call (binding.calls)`);
    }
  }
  for (const name of Object.keys(binding.native)) {
    if (!names.has(name)) found.push(`${name} is bound but not in session.h`);
  }
  return found;
}

const header = fs.readFileSync(HEADER, 'utf8');

it('parses the 61 functions of include/session.h', () => {
  const declared = parseHeader(header);
  assert.equal(declared.length, 61, declared.map((f) => f.name).join(' '));
  assert.equal(new Set(declared.map((f) => f.name)).size, 61);
  assert.deepEqual(declared.find((f) => f.name === 'session_store_update_if'), {
    name: 'session_store_update_if',
    ret: 'int',
    constRet: false,
    params: ['session_store_t *', 'char *', 'char *', 'unsigned long long'],
  });
});

it('every function of session.h is bound, with its types, and reachable', () => {
  assert.deepEqual(problems(header), []);
  assert.equal(binding.prototypes.length, Object.keys(binding.native).length);
});

it('a new function in the header without a binding fails the check', () => {
  const newer = header.replace('#ifdef __cplusplus\n}',
    '/* a new call */\nchar *session_brand_new(const char *session_id);\n\n#ifdef __cplusplus\n}');
  assert.notEqual(newer, header);
  assert.deepEqual(problems(newer), ['session_brand_new is declared in session.h but not bound']);
  const changed = header.replace('long session_count(void);', 'long session_count(int shard);');
  assert.deepEqual(problems(changed), ['session_count: 0 arguments bound, 1 declared']);
  // A string that became the caller's to free must be bound as a pointer.
  const owned = header.replace('const char *session_version(void);', 'char *session_version(void);');
  assert.deepEqual(problems(owned),
    ['session_version: returns char * in the binding, want owned_string_t']);
});

it('every JavaScript call named in binding.calls exists', () => {
  for (const [cName, target] of Object.entries(binding.calls)) {
    if (cName === 'session_free') continue; // called on every returned string
    let fn;
    if (target.startsWith('Store#')) fn = Store.prototype[target.slice(6)];
    else if (target.startsWith('Store.')) fn = Store[target.slice(6)];
    else fn = lib[target];
    assert.equal(typeof fn, 'function', `${cName} -> ${target}`);
  }
});

it('the error codes of session.h are ErrorCode, each with its own class', () => {
  const codes = [...header.matchAll(/SESSION_ERROR_(\w+) = (\d+)/g)];
  assert.ok(codes.length >= 11);
  for (const [, name, value] of codes) {
    assert.equal(lib.ErrorCode[name], Number(value), `SESSION_ERROR_${name}`);
    if (Number(value) !== 0) {
      const err = SessionError.fromCode(Number(value), 'm');
      assert.notEqual(err.constructor, SessionError, `no class for SESSION_ERROR_${name}`);
      assert.equal(err.code, Number(value));
    }
  }
  assert.equal(Object.keys(lib.ErrorCode).length, codes.length);
});

it('index.d.ts declares exactly the exports of index.js', () => {
  const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
  const declared = new Map();
  for (const [, kind, name] of dts.matchAll(/^export declare (function|class|const) (\w+)/gm)) {
    declared.set(name, kind);
  }
  for (const [name, kind] of declared) {
    assert.ok(name in lib, `index.d.ts declares ${name}, index.js does not export it`);
    assert.equal(typeof lib[name], kind === 'const' ? 'object' : 'function', name);
  }
  for (const name of Object.keys(lib)) {
    assert.ok(declared.has(name), `index.js exports ${name}, index.d.ts does not declare it`);
  }
  for (const name of Object.getOwnPropertyNames(Store.prototype)) {
    if (name === 'constructor') continue;
    assert.match(dts, new RegExp(`\\n  (readonly )?${name}[(:]`), `Store#${name} in index.d.ts`);
  }
});
