// Starts Express Gateway 1.x from the config dir given as argv[2] (scripts/bench).
// Run from a directory whose node_modules holds express-gateway (NODE_PATH is set by
// the script to target/bench/eg/node_modules).
const path = require('path');
const gateway = require('express-gateway');

gateway()
  .load(path.resolve(process.argv[2]))
  .run();
