// Stand-in for Kargo's `metrics` plugin (prom-client counter) for scripts/eg-diff: it registers a
// `metrics` policy that only calls next(), so that a pipeline using it runs in EG without
// prom-client. The counter itself is not observed by eg-diff.
module.exports = {
  version: '1.2.0',
  policies: ['metrics'],
  init: function (pluginContext) {
    pluginContext.registerPolicy({
      name: 'metrics',
      schema: { $id: 'http://express-gateway.io/schemas/policies/metrics.json', type: 'object' },
      policy: () => (req, res, next) => next()
    });
  }
};
