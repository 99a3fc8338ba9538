// Preloaded with --require: on exit, writes which TensorFlow.js modules the process loaded.
const { writeFileSync } = require('node:fs');
process.on('exit', () => {
  const loaded = Object.keys(require.cache).filter((file) => file.includes('@tensorflow'));
  if (process.env.SEEDFLOW_TEST_LOADED) writeFileSync(process.env.SEEDFLOW_TEST_LOADED, JSON.stringify(loaded));
});
