#!/usr/bin/env node
// Writes runtime-template/src/router/express/oracle.json: what the JavaScript libraries that
// Express Gateway 1.16 runs on (path-to-regexp 0.1.13, express 4 Layer decoding, vhost 3.0.2,
// minimatch 3.x, http-proxy 1.18 urlJoin, V8 RegExp) answer for a corpus of inputs. The unit
// test `router::express::tests::oracle` compares the Rust router with it. Not part of
// `cargo test`; rerun it when the corpus changes:
//
//   NODE_PATH=<dir with node_modules of express-gateway@1.16> node scripts/express-oracle.js
//
// (`npm install express-gateway@1.16.11` in a scratch directory gives those modules.)
'use strict';
const fs = require('fs');
const path = require('path');
const pathToRegexp = require('path-to-regexp');
const minimatch = require('minimatch');
const vhost = require('vhost');
const { urlJoin } = require('http-proxy/lib/http-proxy/common');

const routePaths = [
  '/wms', '/wms/', '/wms*', '/wms/*', '/p/:id/x/*', '/users/:id', '*', '/*', '/', '',
  '/a/:id?', '/f/:name.:ext', '/n/:id(\\d+)', '/s/:p*', '/a*/b', '/ab+c', '/ab?c',
  '/a(bc)?d', '/:from-:to', '/:a.json', '/c/:x(*)', '/x/:a-:b', '/ows/wmts*', '/a.b',
  '/(a|b)', '/:a?/:b', '/a/:b*/c', '/a:b', '/a/:b/:c', '/k2/*', '/Metrics', '/a//b',
  '/%C3%A4', '/a/:b.:c?', '/a-:b', '/*/x', '/a/*.json', '/a/\\:b', '/api/v1/*',
];
const requestPaths = [
  '/', '', '/wms', '/wms/', '/WMS', '/wms//', '/wmsx', '/wms/x', '/wms/a/b', '/wm', '/wmts',
  '/p/1/x/', '/p/abc/x/a/b', '/p//x/', '/p/1/x', '/P/1/X/', '/users/1', '/users/', '/users/1/',
  '/users/1/2', '/users/a.b', '/a', '/a/', '/a/1', '/a/1/2', '/f/a.json', '/f/a.b.c', '/f/a',
  '/n/12', '/n/ab', '/s/a', '/s/a/b/c', '/a/b', '/axx/b', '/a/x/b', '/a/c', '/abc', '/abbbc',
  '/ac', '/ad', '/abcd', '/a-b', '/x-y/', '/a-', '/x.json', '/c/zz/y', '/x/a-b', '/x/a-b-c',
  '/ows/wmts/1.0.0', '/ows/wmts', '/a.b', '/aXb', '/b', '/x/y', '/a/b/c', '/a/bcd/c',
  '/a:b', '/a/b/c/', '/k2', '/k2/', '/k2/a/b', '/metrics', '/METRICS/', '/a//b', '/a/b//',
  '/%C3%A4', '/%c3%a4', '/p/%FF/x/', '/p/%C3%A4/x/', '/wms/%FF', '/wms%E0%A4%A', '/users/%zz',
  '/users/%41', '/a/b.c', '/a-x', '/y/x', '/a/z.json', '/a/:b', '/api/v1/', '/api/v1',
  '/api/v1/x?y', '/wms?SERVICE=WMS',
];

function layerMatch(route, p) {
  // express 4.22 Layer: fast_star for '*', else regexp.exec on the pathname.
  if (route === '*') return decodeOk([p]) ? 'yes' : 'malformed';
  const re = pathToRegexp(route, [], { strict: false, end: true, sensitive: false });
  const m = re.exec(p);
  if (!m) return 'no';
  return decodeOk(m.slice(1)) ? 'yes' : 'malformed';
}

function decodeOk(groups) {
  for (const g of groups) {
    if (typeof g !== 'string' || g.length === 0) continue;
    try { decodeURIComponent(g); } catch (e) { return false; }
  }
  return true;
}

const paths = [];
for (const r of routePaths) {
  let source;
  try {
    source = r === '*' ? null : pathToRegexp(r, [], { strict: false, end: true }).source;
  } catch (e) {
    paths.push({ route: r, error: String(e) });
    continue;
  }
  const results = {};
  for (const p of requestPaths) {
    // Express matches the pathname only.
    results[p] = layerMatch(r, p.split('?')[0]);
  }
  paths.push({ route: r, source, results });
}

const regexes = [];
const regexCases = [
  ['/api', '', ['/v1/api/x', '/v1/API/x', '/ap']],
  ['^/v[0-9]+/', '', ['/v12/x', '/x/v12/']],
  ['\\s', '', ['a\u00a0b', 'ab', 'a\ufeffb']],
  ['^[^/]+$', '', ['abc', 'a/b', '\u00e4']],
  ['^a.b$', '', ['a-b', 'a\nb', 'a\u2028b', 'a\u00e4b']],
  ['^[\\w-]+$', 'i', ['Ab-9_', 'a b']],
  ['^(a|b)\\.example\\.com$', 'i', ['A.example.com', 'c.a.example.com']],
  ['^\\d{2,3}$', '', ['1', '12', '1234']],
  ['^a{,2}$', '', ['a{,2}', 'aa']],
  ['^[\\D]$', '', ['x', '5']],
  ['^[a-c]x$', 'i', ['Bx', 'dx']],
  ['\\bfoo\\b', '', ['a foo b', 'afoob']],
  ['^[^]$', '', ['\n', 'x']],
  ['[]', '', ['', 'x']],
  ['^\\x41\\u0042$', '', ['AB', 'ab']],
  ['^[\\s\\d]+$', '', [' 1\u2029', 'x']],
  ['token=', '', ['/a?token=1', '/a?tok=1']],
  ['^/wms(?:/|$)', 'i', ['/WMS', '/wms/x', '/wmsx']],
];
for (const [src, flags, hays] of regexCases) {
  const re = new RegExp(src, flags);
  regexes.push({ source: src, flags, results: hays.map(h => [h, re.test(h)]) });
}

const globs = [];
const globPatterns = [
  '*.example.com', '*', 'a?.com', '[ab]x.com', '[!ab]x.com', '[^ab]x.com', '{a,b}.example.com',
  '!*.example.com', '#a', '', '**', 'a**b', '\\*.com', '*.example.com:*', 'localhost:80??',
  '[a-z]*', '.*', 'x{,y}.com', '!(a).com', 'api.example.com', '*.Example.com', '[]a]x',
];
const subjects = [
  'a.example.com', 'a.b.example.com', 'example.com', '.example.com', 'a.example.com:8080',
  'ab.com', 'a.com', 'bx.com', 'cx.com', 'b.example.com', 'c.example.com', 'example.org', '#a',
  '', 'a.b', '.a', 'axxb', '*.com', 'localhost:8080', '.hidden', 'x.com', 'xy.com',
  '(a).com', 'api.example.com', 'API.example.com', ']x', 'a/b', 'a/',
];
for (const g of globPatterns) {
  globs.push({ pattern: g, results: subjects.map(s => [s, minimatch(s, g)]) });
}

const hosts = [];
const hostPatterns = [['*.acme.com', false], ['*.*.example.com', false], ['api-*.example.com', false],
  ['a*b*c.x', false], ['example.com', false], ['[::1]', false], ['(a|b)\\.example\\.com', true],
  ['a|b', true], ['^x.*\\$', true]];
const hostHeaders = ['abc.acme.com', 'ABC.Acme.COM:8080', 'sub.abc.acme.com', 'acme.com', '.acme.com',
  'sub.abc.example.com', 'abc.example.com', 'api-eu.example.com', 'api-.example.com', 'abbbc.x',
  'aXbYc.x', 'abc.x', 'EXAMPLE.com', 'example.com.evil', 'wwwexample.com', '[::1]:8080',
  'A.example.com:443', 'c.a.example.com', 'ax', 'xb', 'xax', 'xyz$', 'xyz$$', ':80', null];
for (const [p, isRegex] of hostPatterns) {
  const mw = vhost(isRegex ? new RegExp(p) : p, () => { hit = true; });
  let hit;
  const results = hostHeaders.map(h => {
    hit = false;
    mw({ headers: h === null ? {} : { host: h } }, {}, () => {});
    return [h, hit];
  });
  hosts.push({ pattern: p, regex: isRegex, results });
}

const joins = [];
for (const [e, t] of [['/cgi-bin/mapserv', '//foo'], ['/cgi-bin/mapserv', '/?SERVICE=WMS'],
  ['/metrics', '/'], ['/', '/capture?x=1'], ['/a//b/', '//c//d'], ['/a', '/b?u=http://x//y'],
  ['/a', '/b?c?d'], ['/p', '/http://x/y'], ['/p', '/https://x'], ['', '/x'], ['/p', ''],
  ['/cgi-bin/mapserv', '//a%2Fb%20c?x=%41'], ['/p', '/a?'], ['/p', '/http:/https:/x']]) {
  joins.push([e, t, urlJoin(e, t)]);
}

const out = { paths, regexes, globs, hosts, joins };
const file = path.join(__dirname, '..', 'runtime-template', 'src', 'router', 'express', 'oracle.json');
fs.writeFileSync(file, JSON.stringify(out) + '\n');
console.log('wrote', file);
