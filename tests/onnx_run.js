#!/usr/bin/env node
// Runs an ONNX model in onnxruntime (the npm package onnxruntime-node, CPU) on inputs from a JSON file and writes
// the outputs as JSON; with --check TOL, compares them with the file's expected outputs instead.
//
//   node tests/onnx_run.js MODEL.onnx CASES.json OUT.json [--check TOL]
//
// CASES.json: {"cases": [{"inputs": {NAME: {"dims": [...], "data": [...]}, ...},
//                         "expected": {NAME: {"dims": [...], "data": [...]}}}, ...]}   ("expected" only for --check)
// OUT.json:   {"cases": [{"outputs": {NAME: {"dims": [...], "data": [...]}}}, ...]}
// --check: every output must have the expected dims and |got - want| <= TOL * max(1, |want|); exit 1 otherwise,
// naming the case, output and element.
'use strict';
const fs = require('fs');

function usage() {
  console.error('usage: node tests/onnx_run.js MODEL.onnx CASES.json OUT.json [--check TOL]');
  process.exit(2);
}

async function main() {
  const args = process.argv.slice(2);
  let tol = null;
  const k = args.indexOf('--check');
  if (k >= 0) {
    tol = Number(args[k + 1]);
    if (!(tol >= 0)) usage();
    args.splice(k, 2);
  }
  if (args.length !== 3) usage();
  const [modelPath, casesPath, outPath] = args;
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    console.error('onnx_run.js: onnxruntime-node is not installed (npm install --ignore-scripts onnxruntime-node; ' +
                  'or set NODE_PATH to the node_modules that holds it)');
    process.exit(3);
  }
  const cases = JSON.parse(fs.readFileSync(casesPath, 'utf8')).cases;
  const session = await ort.InferenceSession.create(modelPath);
  const results = [];
  let bad = 0;
  for (let c = 0; c < cases.length; c++) {
    const feeds = {};
    for (const [name, t] of Object.entries(cases[c].inputs))
      feeds[name] = new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
    const out = await session.run(feeds);
    const outputs = {};
    for (const [name, t] of Object.entries(out)) outputs[name] = {dims: t.dims.map(Number), data: Array.from(t.data)};
    results.push({outputs});
    if (tol === null) continue;
    for (const [name, want] of Object.entries(cases[c].expected || {})) {
      const got = outputs[name];
      if (!got) {
        console.error(`case ${c}: no output ${name}`);
        bad++;
        continue;
      }
      if (JSON.stringify(got.dims) !== JSON.stringify(want.dims)) {
        console.error(`case ${c}: ${name} has dims [${got.dims}], expected [${want.dims}]`);
        bad++;
        continue;
      }
      let worst = 0, at = -1;
      for (let i = 0; i < want.data.length; i++) {
        const d = Math.abs(got.data[i] - want.data[i]) / Math.max(1, Math.abs(want.data[i]));
        if (!(d <= worst)) { worst = d; at = i; }
      }
      if (!(worst <= tol)) {
        console.error(`case ${c}: ${name}[${at}] = ${got.data[at]}, dendrite gives ${want.data[at]} ` +
                      `(difference ${worst}, tolerance ${tol})`);
        bad++;
      } else {
        console.log(`case ${c} [${want.dims}]: ${name} within ${worst.toExponential(2)} of dendrite's`);
      }
    }
  }
  fs.writeFileSync(outPath, JSON.stringify({cases: results}) + '\n');
  process.exit(bad ? 1 : 0);
}

main().catch((e) => {
  console.error('onnx_run.js: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
