/**
 * A process that publishes artifacts into a store when told to, for the test
 * that many processes publishing one key never lose or mix an artifact. Each
 * `{ key }` message makes it write two files holding its own name, publish
 * them under that key, and answer with the outcome and the manifest's files.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Store } from '../../src/cache/store.js';

const [root, name] = process.argv.slice(2) as [string, string];
const store = new Store(root);

process.on('message', (message: { key: string } | 'exit') => {
  if (message === 'exit') {
    process.disconnect();
    return;
  }
  void (async () => {
    const draft = await store.draft(message.key);
    // Large enough that writing and hashing take a while, so publishers overlap.
    const body = `${name};`.repeat(64 * 1024);
    await writeFile(join(draft.dir, 'a.bin'), body);
    await writeFile(join(draft.dir, 'b.bin'), body);
    const { manifest, outcome } = await draft.publish({
      key: message.key, stage: 's', type: 't', matrix: {}, record: null, summary: { writer: name }, lineage: {}, createdAt: new Date().toISOString(), durationMs: 0,
    });
    process.send?.({ key: message.key, outcome, files: manifest.files, summary: manifest.summary });
  })().catch((error: unknown) => {
    process.send?.({ key: message.key, error: error instanceof Error ? error.message : String(error) });
  });
});
process.send?.('ready');
