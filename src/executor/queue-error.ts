/** A queue URL that cannot be used, or a Redis server that cannot be reached: the user's to fix. */
export class QueueError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = 'QueueError';
  }
}
