/**
 * A mistake in what the user gave a stage (its data, its params, its
 * inputs): shown as a message with a hint, never as a bug with a stack.
 * Stages, the numeric code under them and local stage modules throw it.
 */
export class StageUserError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = 'StageUserError';
  }
}
