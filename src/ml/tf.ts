/**
 * The TensorFlow.js namespace's type, in a module of its own so that the
 * modules `backend.ts` loads can name it without importing `backend.ts` back.
 */
export type Tf = typeof import('@tensorflow/tfjs');
