// YAML <-> JSON for scripts/eg-diff, with the js-yaml that Express Gateway itself uses (so the
// Python side stays standard-library only). Usage: node yaml.js to-json FILE | node yaml.js to-yaml FILE
// (FILE is JSON). Run with NODE_PATH pointing at the EG install's node_modules.
const fs = require('fs');
const yaml = require('js-yaml');
const [mode, file] = process.argv.slice(2);
const text = fs.readFileSync(file, 'utf8');
if (mode === 'to-json') {
  process.stdout.write(JSON.stringify(yaml.safeLoad(text)));
} else if (mode === 'to-yaml') {
  process.stdout.write(yaml.safeDump(JSON.parse(text), { lineWidth: 1000, noRefs: true }));
} else {
  process.stderr.write('usage: node yaml.js to-json|to-yaml FILE\n');
  process.exit(2);
}
