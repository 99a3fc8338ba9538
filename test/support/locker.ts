/**
 * A process that takes a store's lock when started and holds it until told to
 * release, for the tests of concurrent take-over. It answers `locked` or
 * `locked-out` (another live process holds the store).
 */
import { Store, StoreLockedError } from '../../src/cache/store.js';

const store = new Store(process.argv[2] ?? 'artifacts');
try {
  const release = await store.lock('locker', { wait: false });
  process.send?.('locked');
  process.once('message', () => {
    void release().then(() => process.disconnect());
  });
} catch (error) {
  if (!(error instanceof StoreLockedError)) throw error;
  process.send?.('locked-out');
  process.disconnect();
}
