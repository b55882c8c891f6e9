#!/usr/bin/env node
// A multilayer perceptron trained by manual backprop in JavaScript (Node.js, no packages): any number of dense
// layers with sigmoid or tanh after each, half the summed squared error or the mean squared error, plain gradient
// descent, full batch or the problem's minibatch orders. Samples as rows, as the problem file holds them.
//
// Checked by backprop cross-check through its command protocol (docs/other-languages.md):
//
//     node examples/js/mlp.js PROBLEM.safetensors RESULT.safetensors
"use strict";
const fs = require("fs");

// -- safetensors: 8 bytes of header length (little-endian), the JSON header, then the tensors' bytes ------------
function readSafetensors(path) {
  const bytes = fs.readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  const data = bytes.subarray(8 + n);
  const tensors = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = t.data_offsets;
    const copy = new Uint8Array(data.subarray(begin, end)); // aligned, for the typed array
    const values = t.dtype === "F64" ? new Float64Array(copy.buffer)
      : t.dtype === "I64" ? Array.from(new BigInt64Array(copy.buffer), Number) : null;
    tensors[name] = { shape: t.shape, values };
  }
  return { tensors, metadata: header.__metadata__ || {} };
}

function writeSafetensors(path, tensors, metadata) {
  const header = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: "F64", shape: t.shape, data_offsets: [offset, offset + 8 * t.values.length] };
    offset += 8 * t.values.length;
  }
  let text = JSON.stringify(header);
  text += " ".repeat((8 - (text.length % 8)) % 8); // the tensors' bytes start 8-byte aligned
  const out = Buffer.alloc(8 + text.length + offset);
  out.writeBigUInt64LE(BigInt(text.length), 0);
  out.write(text, 8, "utf8");
  let at = 8 + text.length;
  for (const t of Object.values(tensors)) {
    for (const v of t.values) { out.writeDoubleLE(v, at); at += 8; }
  }
  fs.writeFileSync(path, out);
}

// -- the network: z = a W + b, a = f(z); W (in, out) row-major, a (n, width) -------------------------------------
const ACTIVATIONS = {
  sigmoid: { f: (z) => 1 / (1 + Math.exp(-z)), df: (z, a) => a * (1 - a) },
  tanh: { f: Math.tanh, df: (z, a) => 1 - a * a },
};

function forward(layers, X, n) {
  const caches = [];
  let a = X;
  for (const { W, b, fin, fout, act } of layers) {
    const z = new Float64Array(n * fout);
    for (let s = 0; s < n; s++)
      for (let j = 0; j < fout; j++) {
        let sum = b[j];
        for (let i = 0; i < fin; i++) sum += a[s * fin + i] * W[i * fout + j];
        z[s * fout + j] = sum;
      }
    const out = z.map(ACTIVATIONS[act].f);
    caches.push({ x: a, z, a: out });
    a = out;
  }
  return caches;
}

// dL/da of the loss: half_sse: a - y; mse: 2 (a - y) / (n K)
function lossAndGradient(loss, a, y) {
  const scale = loss === "mse" ? 2 / a.length : 1;
  let value = 0;
  const da = new Float64Array(a.length);
  for (let k = 0; k < a.length; k++) {
    const r = a[k] - y[k];
    value += r * r;
    da[k] = scale * r;
  }
  return [loss === "mse" ? value / a.length : 0.5 * value, da];
}

function backward(layers, caches, da, n) {
  const grads = new Array(layers.length);
  for (let l = layers.length - 1; l >= 0; l--) {
    const { W, fin, fout, act } = layers[l];
    const { x, z, a } = caches[l];
    const dz = da.map((d, k) => d * ACTIVATIONS[act].df(z[k], a[k]));
    const dW = new Float64Array(fin * fout), db = new Float64Array(fout), dx = new Float64Array(n * fin);
    for (let s = 0; s < n; s++)
      for (let j = 0; j < fout; j++) {
        const d = dz[s * fout + j];
        db[j] += d;
        for (let i = 0; i < fin; i++) {
          dW[i * fout + j] += x[s * fin + i] * d;
          dx[s * fin + i] += W[i * fout + j] * d;
        }
      }
    grads[l] = { dW, db };
    da = dx;
  }
  return grads;
}

function rows(values, width, idx) {
  const out = new Float64Array(idx.length * width);
  idx.forEach((r, s) => out.set(values.subarray(r * width, (r + 1) * width), s * width));
  return out;
}

function main() {
  const [problemPath, resultPath] = process.argv.slice(2);
  if (!resultPath) {
    process.stderr.write("usage: mlp.js PROBLEM.safetensors RESULT.safetensors\n");
    process.exit(2);
  }
  const { tensors: t, metadata: m } = readSafetensors(problemPath);
  const meta = { supports: "forward,gradients,train" };
  const refuse = (why) => { writeSafetensors(resultPath, {}, { ...meta, unsupported: why }); process.exit(0); };
  const entries = m.model.split(",");
  const layers = [];
  for (let k = 0; k < entries.length; k += 2) {
    const [kind, fin, fout] = entries[k].split(":");
    if (kind !== "dense" || !(entries[k + 1] in ACTIVATIONS)) refuse("dense layers, each followed by sigmoid or tanh");
    const l = layers.length + 1;
    layers.push({ W: t[`layer${l}.weight`].values, b: t[`layer${l}.bias`].values, fin: +fin, fout: +fout,
      act: entries[k + 1] });
  }
  if (!["half_sse", "mse"].includes(m.loss)) refuse("the half_sse and mse losses only");
  if (m.optimizer !== "sgd" || +m.weight_decay !== 0 || m.clip || m.schedule) {
    refuse("plain sgd without weight decay, clipping or a schedule only");
  }
  if (m.dtype !== "float64" || m.compute) refuse("float64 only");
  const tasks = m.tasks.split(","), N = t.X.shape[0], out = layers[layers.length - 1].fout;
  const result = {};
  const params = (prefix) => layers.forEach(({ W, b, fin, fout }, l) => {
    result[`${prefix}layer${l + 1}.weight`] = { shape: [fin, fout], values: Float64Array.from(W) };
    result[`${prefix}layer${l + 1}.bias`] = { shape: [fout], values: Float64Array.from(b) };
  });
  if (tasks.includes("forward")) {
    const caches = forward(layers, t.X.values, N);
    caches.forEach((c, l) => {
      result[`forward.${2 * l + 1}`] = { shape: [N, layers[l].fout], values: c.z };
      result[`forward.${2 * l + 2}`] = { shape: [N, layers[l].fout], values: c.a };
    });
    result.output = { shape: [N, out], values: caches[caches.length - 1].a };
  }
  if (tasks.includes("gradients")) {
    const caches = forward(layers, t.X.values, N);
    const [loss, da] = lossAndGradient(m.loss, caches[caches.length - 1].a, t.y.values);
    result.loss = { shape: [], values: [loss] };
    backward(layers, caches, da, N).forEach(({ dW, db }, l) => {
      result[`grad.layer${l + 1}.weight`] = { shape: [layers[l].fin, layers[l].fout], values: dW };
      result[`grad.layer${l + 1}.bias`] = { shape: [layers[l].fout], values: db };
    });
  }
  if (tasks.includes("train")) {
    const epochs = +m.epochs, lr = +m.lr, batch = +m.batch_size || N, fin = layers[0].fin;
    const steps = Math.ceil(N / batch), losses = new Float64Array(epochs * steps);
    const checkpoints = new Set(m.checkpoints ? m.checkpoints.split(",").map(Number) : []);
    const all = [...Array(N).keys()];
    for (let e = 0; e < epochs; e++) {
      for (let s = 0; s < steps; s++) {
        const idx = t.orders ? t.orders.values.slice(e * N + s * batch, e * N + Math.min((s + 1) * batch, N))
          : all;
        const X = rows(t.X.values, fin, idx), y = rows(t.y.values, out, idx);
        const caches = forward(layers, X, idx.length);
        const [loss, da] = lossAndGradient(m.loss, caches[caches.length - 1].a, y);
        losses[e * steps + s] = loss; // before the update
        backward(layers, caches, da, idx.length).forEach(({ dW, db }, l) => {
          dW.forEach((g, k) => { layers[l].W[k] -= lr * g; });
          db.forEach((g, k) => { layers[l].b[k] -= lr * g; });
        });
      }
      if (checkpoints.has(e + 1)) params(`epoch${e + 1}.`);
    }
    result.losses = { shape: [epochs, steps], values: losses };
    params("final.");
  }
  writeSafetensors(resultPath, result, meta);
}

main();
