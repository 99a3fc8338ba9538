// The import rules of ARCHITECTURE.md, checked: no cycle between modules, and folders that
// import one way only (cli -> executor, report, history -> stages -> plan -> cache -> config ->
// errors, util; ml/ below stages, reached from stages and from the executor's compute checks;
// stats/ imports nothing of the project and serves report and cli).
const layer = (name, allowed) => ({
  name: `${name}-imports-one-way`,
  comment: `src/${name}/ may import only ${allowed.join(', ')} (and itself)`,
  severity: 'error',
  from: { path: `^src/${name}/` },
  to: { path: '^src/', pathNot: [`^src/${name}/`, ...allowed.map((folder) => `^src/${folder}/`)] },
});

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'an import cycle between modules', from: {}, to: { circular: true } },
    { name: 'nothing-imports-cli', severity: 'error', from: { path: '^src/', pathNot: '^src/cli/' }, to: { path: '^src/cli/' } },
    layer('util', []),
    layer('errors', ['util']),
    layer('config', ['errors', 'util']),
    layer('cache', ['config', 'errors', 'util']),
    layer('plan', ['cache', 'config', 'errors', 'util']),
    layer('ml', ['errors', 'util']),
    layer('stats', []),
    layer('stages', ['plan', 'cache', 'ml', 'config', 'errors', 'util']),
    layer('executor', ['stages', 'plan', 'cache', 'ml', 'config', 'errors', 'util']),
    layer('history', ['executor', 'stages', 'plan', 'cache', 'config', 'errors', 'util']),
    layer('report', ['history', 'stages', 'plan', 'cache', 'config', 'stats', 'errors', 'util']),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
