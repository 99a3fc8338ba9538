import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

const MIB = 1024 * 1024;

/**
 * Reads a file the user named, only if it is a regular file of at most
 * `maxBytes`: a device (`/dev/zero`), a FIFO or a folder would hang the read
 * or fill memory. The file is opened without blocking (a FIFO would wait for
 * a writer) and checked on the open handle, so it cannot be swapped between
 * the check and the read. Returns the text, or what is wrong in words.
 */
export async function readRegularFile(path: string, maxBytes: number): Promise<{ text: string } | { problem: string }> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    return { problem: describeFsError(error) };
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return { problem: `it is ${kindOf(stat)}, not a regular file` };
    if (stat.size > maxBytes) return { problem: `it is ${(stat.size / MIB).toFixed(1)} MiB, more than the limit of ${(maxBytes / MIB).toFixed(1)} MiB` };
    return { text: await handle.readFile('utf8') };
  } catch (error) {
    return { problem: describeFsError(error) };
  } finally {
    await handle.close();
  }
}

/** What a file system error means, in words. */
export function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const words: Readonly<Record<string, string>> = {
    ENOENT: 'not found',
    ENOTDIR: 'a part of the path is a file, not a folder',
    EISDIR: 'it is a folder',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'the file system is read-only',
    ENOSPC: 'no space left on the device',
    EDQUOT: 'the disk quota is exceeded',
    ELOOP: 'too many symbolic links',
    ENAMETOOLONG: 'the path is too long',
  };
  return (code !== undefined && Object.prototype.hasOwnProperty.call(words, code) ? words[code] : undefined) ?? code ?? (error instanceof Error ? error.message : String(error));
}

/** "a folder", "a FIFO", "a character device"... */
export function kindOf(stat: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (stat.isDirectory()) return 'a folder';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}
