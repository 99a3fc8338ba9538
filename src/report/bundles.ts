import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';

/** The browser builds a report inlines, in load order: each reads the previous ones from the page's globals. */
export const BROWSER_PACKAGES = ['vega', 'vega-lite', 'vega-embed'] as const;

const require = createRequire(import.meta.url);

interface PackageJson {
  readonly name?: string;
  readonly version?: string;
  readonly jsdelivr?: string;
  readonly unpkg?: string;
}

/** The installed package's folder: up from its entry point to the package.json that names it. */
function packageRoot(name: string): { readonly root: string; readonly json: PackageJson } {
  let dir = dirname(require.resolve(name));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const json = JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
      if (json.name === name) return { root: dir, json };
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the folder of the installed package ${name}`);
    dir = parent;
  }
}

/** One inlinable browser build. */
export interface BrowserBundle {
  readonly name: string;
  readonly version: string;
  /** The script's text, safe to put between script tags. */
  readonly code: string;
}

/**
 * Reads a package's minified browser build (the file its package.json offers
 * to CDNs), made safe to inline: no source-map comment (the page must not ask
 * for anything) and no closing script tag.
 */
export async function browserBundle(name: (typeof BROWSER_PACKAGES)[number]): Promise<BrowserBundle> {
  const { root, json } = packageRoot(name);
  const relative = json.jsdelivr ?? json.unpkg ?? `build/${name}.min.js`;
  const text = await readFile(join(root, relative), 'utf8');
  const code = text.replace(/\/\/# sourceMappingURL=\S+\s*$/, '').replace(/<\/script/gi, '<\\/script');
  return { name, version: json.version ?? 'unknown', code };
}
