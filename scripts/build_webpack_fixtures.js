#!/usr/bin/env node
/*
 * Build the webpack "library type" fixtures used by the export-discovery tests.
 *
 *   node scripts/build_webpack_fixtures.js [OUTPUT_DIR]
 *
 * OUTPUT_DIR defaults to jsengine_ml/conformance/bundles/.  Sources live in
 * jsengine_ml/conformance/bundles/src/ and are never written to.
 *
 * One production (minified) bundle is built per output.library.type, plus two
 * ES-module default-export entries and one negative fixture that exports
 * nothing.  A hand-written Function("return this")().predict file is copied
 * verbatim.  All output is ES5 (target ['web', 'es5']) so Duktape can run it;
 * every file is parsed with acorn at ecmaVersion 5 to prove it.  Finally a
 * manifest.json describing every file is written next to the bundles.
 *
 * Uses only the webpack pinned in jsengine_ml/js/package-lock.json.
 */
'use strict';

const fs = require('fs');
const path = require('path');

const REPO = path.resolve(__dirname, '..');
const NODE_MODULES = path.join(REPO, 'jsengine_ml', 'js', 'node_modules');
const BUNDLES = path.join(REPO, 'jsengine_ml', 'conformance', 'bundles');
const SRC = path.join(BUNDLES, 'src');

const webpack = require(path.join(NODE_MODULES, 'webpack'));
const acorn = require(path.join(NODE_MODULES, 'acorn'));

const LIBRARY_NAME = 'WineModel';
const EXAMPLE = { input: [[1, 2], [3, 4]], output: [[6], [14]] };

// file: output file name; source: entry under src/; type/name: output.library;
// expected_path: what __jsml_exports.find('{}') reports (see jsengine_ml/shims/exports.js).
const BUNDLE_SPECS = [
  { file: 'var.js', type: 'var', name: LIBRARY_NAME, expected_path: 'WineModel.predict' },
  { file: 'assign.js', type: 'assign', name: LIBRARY_NAME, expected_path: 'WineModel.predict' },
  { file: 'this.js', type: 'this', name: LIBRARY_NAME, expected_path: 'WineModel.predict' },
  { file: 'window.js', type: 'window', name: LIBRARY_NAME, expected_path: 'WineModel.predict' },
  { file: 'self.js', type: 'self', name: LIBRARY_NAME, expected_path: 'WineModel.predict' },
  { file: 'global.js', type: 'global', name: LIBRARY_NAME, expected_path: 'WineModel.predict' },
  { file: 'umd.js', type: 'umd', name: LIBRARY_NAME, expected_path: 'module.exports.predict' },
  {
    file: 'commonjs.js', type: 'commonjs', name: LIBRARY_NAME,
    expected_path: 'module.exports.WineModel.predict',
  },
  { file: 'commonjs2.js', type: 'commonjs2', name: null, expected_path: 'module.exports.predict' },
  {
    file: 'commonjs-module.js', type: 'commonjs-module', name: null,
    expected_path: 'module.exports.predict',
  },
  {
    file: 'default-object.js', type: 'umd', name: LIBRARY_NAME, source: 'default-object.js',
    expected_path: 'module.exports.default.predict',
  },
  {
    file: 'default-function.js', type: 'var', name: LIBRARY_NAME, source: 'default-function.js',
    expected_path: 'WineModel.default',
  },
];

const NEGATIVE_SPECS = [
  // No output.library at all: webpack emits a self-contained IIFE.
  { file: 'no-export.js', type: null, name: null, source: 'no-export.js', expected_path: null },
];

const HANDWRITTEN_SPECS = [
  {
    file: 'function-return-this.js', type: 'function-return-this', name: null,
    source: 'function-return-this.js', expected_path: 'predict',
  },
];

function webpackConfig(spec, outDir) {
  const output = {
    path: outDir,
    filename: spec.file,
    // Keep the output independent of the checkout location / package.json.
    uniqueName: 'jsengine-ml-fixture',
    hashFunction: 'xxhash64',
  };
  if (spec.type) {
    output.library = spec.name ? { type: spec.type, name: spec.name } : { type: spec.type };
  }
  return {
    mode: 'production',
    context: SRC,
    entry: './' + (spec.source || 'entry.js'),
    // 'es5' forces output.environment.* to false (no arrows, const, ...).
    target: ['web', 'es5'],
    output,
    devtool: false,
    performance: { hints: false },
    // Do not let a stray browserslist / package.json change the output.
    resolve: { modules: [] },
    optimization: { moduleIds: 'deterministic', chunkIds: 'deterministic' },
    infrastructureLogging: { level: 'error' },
  };
}

function run(configs) {
  return new Promise((resolve, reject) => {
    webpack(configs, (err, stats) => {
      if (err) return reject(err);
      const info = stats.toJson({ all: false, errors: true, warnings: true });
      const problems = [].concat(info.errors || [], info.warnings || []);
      for (const child of info.children || []) {
        problems.push(...(child.errors || []), ...(child.warnings || []));
      }
      if (stats.hasErrors()) {
        return reject(new Error(problems.map((p) => p.message || String(p)).join('\n')));
      }
      for (const p of problems) console.warn('webpack warning:', p.message || String(p));
      resolve();
    });
  });
}

function assertEs5(file) {
  const code = fs.readFileSync(file, 'utf8');
  try {
    acorn.parse(code, { ecmaVersion: 5, sourceType: 'script' });
  } catch (e) {
    throw new Error(`${file} is not ES5: ${e.message}`);
  }
  // Belt and braces (acorn at ecmaVersion 5 already rejects all of these).
  for (const bad of [/=>/, /\bconst\s/, /\blet\s/, /\bclass\s/]) {
    if (bad.test(code)) throw new Error(`${file} contains ${bad}`);
  }
  return code.length;
}

async function main() {
  const outDir = path.resolve(process.argv[2] || BUNDLES);
  fs.mkdirSync(outDir, { recursive: true });

  const built = BUNDLE_SPECS.concat(NEGATIVE_SPECS);
  // Sequential builds: simple and keeps the output order-independent.
  for (const spec of built) {
    await run(webpackConfig(spec, outDir));
  }
  for (const spec of HANDWRITTEN_SPECS) {
    fs.copyFileSync(path.join(SRC, spec.source), path.join(outDir, spec.file));
  }

  const describe = (spec, builtBy) => ({
    file: spec.file,
    type: spec.type,
    name: spec.name,
    source: 'src/' + (spec.source || 'entry.js'),
    built_by: builtBy,
    expected_path: spec.expected_path,
  });
  const manifest = {
    description:
      'Bundles for export-discovery tests; regenerate with node scripts/build_webpack_fixtures.js',
    webpack: require(path.join(NODE_MODULES, 'webpack', 'package.json')).version,
    function: 'predict',
    example: EXAMPLE,
    bundles: BUNDLE_SPECS.map((s) => describe(s, 'webpack'))
      .concat(HANDWRITTEN_SPECS.map((s) => describe(s, 'hand-written'))),
    negative: NEGATIVE_SPECS.map((s) => describe(s, 'webpack')),
  };

  for (const entry of manifest.bundles.concat(manifest.negative)) {
    const size = assertEs5(path.join(outDir, entry.file));
    console.log(`${entry.file.padEnd(24)} ${String(size).padStart(6)} bytes  ES5 ok`);
  }
  fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log('wrote', path.join(outDir, 'manifest.json'));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
