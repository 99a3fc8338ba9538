/** Saving and loading models in the TensorFlow.js layers format, on every backend. */
import { readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, normalize } from 'node:path';
import type { io, LayersModel, Sequential, Tensor } from '@tensorflow/tfjs';
import type { Tf } from '../tf.js';
import { checkWeights, PREDICT_CHUNK, toTensors, type MlpWeights } from './model.js';
import { resolveMlp, type MlpSpec } from './spec.js';

/**
 * A TensorFlow.js Sequential model with the given weights, for saving in the
 * standard layers format. Layers get fixed names (`flatten_1`, `dense_1`...)
 * so the saved topology does not depend on how many models the process built.
 */
export function toLayersModel(tf: Tf, spec: MlpSpec, weights: MlpWeights): Sequential {
  const net = resolveMlp(spec);
  checkWeights(net, weights);
  const model = tf.sequential({ name: 'mlp' });
  let flattens = 0;
  let denses = 0;
  spec.layers.forEach((layer, i) => {
    const input = i === 0 ? { inputShape: [...spec.input_shape] } : {};
    if (layer.type === 'flatten') {
      model.add(tf.layers.flatten({ ...input, name: `flatten_${++flattens}` }));
    } else {
      model.add(tf.layers.dense({ ...input, units: layer.units, activation: layer.activation ?? 'linear', name: `dense_${++denses}` }));
    }
  });
  const values = toTensors(tf, net, weights);
  model.setWeights(values);
  tf.dispose(values);
  return model;
}

/** The JSON of a TensorFlow.js layers model file (`model.json`). */
interface ModelJson {
  readonly format?: string;
  readonly generatedBy?: string;
  readonly convertedBy?: string | null;
  readonly modelTopology: unknown;
  readonly weightsManifest: readonly { readonly paths: readonly string[]; readonly weights: readonly io.WeightsManifestEntry[] }[];
  readonly trainingConfig?: io.TrainingConfig;
  readonly userDefinedMetadata?: io.ModelArtifacts['userDefinedMetadata'];
}

/** The model file of the TensorFlow.js layers format. */
export const MODEL_FILE = 'model.json';
/** The weights file of the TensorFlow.js layers format. */
export const WEIGHTS_FILE = 'weights.bin';

function joinBuffers(data: io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  const parts = Array.isArray(data) ? data : [data];
  const out = new Uint8Array(parts.reduce((a, b) => a + b.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(new Uint8Array(part), offset);
    offset += part.byteLength;
  }
  return out;
}

/**
 * An IOHandler that saves a model to, and loads it from, a folder as
 * `model.json` plus `weights.bin`: the files tfjs-node's `file://` handler
 * reads and writes, available on every backend.
 */
export function folderModelHandler(dir: string): io.IOHandler {
  return {
    async save(artifacts: io.ModelArtifacts): Promise<io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error('only JSON model topologies can be saved to a folder');
      const weights = joinBuffers(artifacts.weightData);
      const json: ModelJson = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.trainingConfig !== undefined ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata !== undefined ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      const text = JSON.stringify(json);
      await writeFile(join(dir, WEIGHTS_FILE), weights);
      await writeFile(join(dir, MODEL_FILE), text);
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: Buffer.byteLength(JSON.stringify(artifacts.modelTopology)),
          weightSpecsBytes: Buffer.byteLength(JSON.stringify(artifacts.weightSpecs ?? [])),
          weightDataBytes: weights.byteLength,
        },
      };
    },
    async load(): Promise<io.ModelArtifacts> {
      const json = JSON.parse(await readFile(join(dir, MODEL_FILE), 'utf8')) as ModelJson;
      const weightSpecs: io.WeightsManifestEntry[] = [];
      const buffers: Uint8Array[] = [];
      for (const group of json.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const path of group.paths) {
          // A model folder is self-contained: refuse manifests that point outside it.
          if (isAbsolute(path) || normalize(path).startsWith('..')) throw new Error(`${MODEL_FILE} refers to weights outside its folder: ${path}`);
          buffers.push(await readFile(join(dir, path)));
        }
      }
      const weightData = joinBuffers(buffers.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer)).buffer as ArrayBuffer;
      return {
        modelTopology: json.modelTopology as io.ModelArtifacts['modelTopology'],
        weightSpecs,
        weightData,
        ...(json.format !== undefined ? { format: json.format } : {}),
        ...(json.generatedBy !== undefined ? { generatedBy: json.generatedBy } : {}),
        ...(json.convertedBy != null ? { convertedBy: json.convertedBy } : {}),
        ...(json.trainingConfig !== undefined ? { trainingConfig: json.trainingConfig } : {}),
        ...(json.userDefinedMetadata !== undefined ? { userDefinedMetadata: json.userDefinedMetadata } : {}),
      };
    },
  };
}

/** Saves a model in the TensorFlow.js layers format (`model.json`, `weights.bin`) into an existing folder. */
export async function saveMlp(tf: Tf, spec: MlpSpec, weights: MlpWeights, dir: string): Promise<void> {
  const model = toLayersModel(tf, spec, weights);
  try {
    await model.save(folderModelHandler(dir));
  } finally {
    model.dispose();
  }
}

/** Loads a model saved by `saveMlp` (or by tfjs-node into a folder). */
export function loadLayersModelFromFolder(tf: Tf, dir: string): Promise<LayersModel> {
  return tf.loadLayersModel(folderModelHandler(dir));
}

/**
 * Class probabilities, row-major `[n, classes]`, of a layers model on flat
 * rows `x` (`[n, width]`), reshaped to the model's input shape.
 */
export function predictLayersModel(tf: Tf, model: LayersModel, x: Float32Array, n: number): Float32Array {
  const inputShape = (model.inputs[0]?.shape ?? []).slice(1).map((d) => d ?? 0);
  const width = inputShape.reduce((a, b) => a * b, 1);
  const classes = (model.outputs[0]?.shape ?? []).at(-1) ?? 0;
  if (x.length !== n * width) throw new RangeError(`x has ${x.length} values, expected ${n} × ${width} for input shape [${inputShape.join(', ')}]`);
  const probs = new Float32Array(n * classes);
  for (let start = 0; start < n; start += PREDICT_CHUNK) {
    const rows = Math.min(PREDICT_CHUNK, n - start);
    // predict's default batch of 32 rows makes ~300 tiny products per chunk, 25 times slower than one.
    const out = tf.tidy(() => model.predict(tf.tensor(x.subarray(start * width, (start + rows) * width), [rows, ...inputShape]), { batchSize: rows }) as Tensor);
    probs.set(out.dataSync() as Float32Array, start * classes);
    out.dispose();
  }
  return probs;
}
