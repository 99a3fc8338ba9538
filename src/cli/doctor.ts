import { availableParallelism, cpus, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { describeCompute, detectCompute, loadTf } from '../ml/backend.js';

const require = createRequire(import.meta.url);

function version(pkg: string): string {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

/** The facts `seedflow doctor` prints, as label/value rows. */
export async function doctorReport(store: string): Promise<[string, string][]> {
  const rows: [string, string][] = [
    ['seedflow', (require('../../../package.json') as { version: string }).version],
    ['node', process.version],
    ['cores', `${availableParallelism()} (${cpus()[0]?.model ?? 'unknown cpu'})`],
    ['memory', `${(totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ['@tensorflow/tfjs', version('@tensorflow/tfjs')],
    ['@tensorflow/tfjs-node', version('@tensorflow/tfjs-node')],
    ['@tensorflow/tfjs-backend-wasm', version('@tensorflow/tfjs-backend-wasm')],
    ['onnxruntime-node', version('onnxruntime-node')],
    ['backend (detected)', describeCompute(detectCompute())],
  ];
  const notes: string[] = [];
  try {
    const { compute, matmul } = await loadTf((m) => notes.push(m));
    rows.push(['backend (loaded)', describeCompute(compute)]);
    if (matmul !== undefined) rows.push(['matrix products', matmul.description]);
  } catch (error) {
    rows.push(['backend (loaded)', `failed: ${error instanceof Error ? error.message : String(error)}`]);
  }
  for (const note of notes) rows.push(['backend note', note]);
  try {
    const { datasetFiles } = await import('../stages/dataset.js');
    const files = await datasetFiles({ name: 'fashion-mnist' } as never, { allowDownload: false, baseDir: process.cwd(), log: () => {} });
    rows.push(['fashion-mnist data', files[0] !== undefined ? files[0].replace(/\/[^/]+$/, '') : 'not found']);
  } catch (error) {
    rows.push(['fashion-mnist data', `not found: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`]);
  }
  rows.push(['store', store]);
  return rows;
}
