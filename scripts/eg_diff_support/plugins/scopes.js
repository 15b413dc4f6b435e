// Stand-in for Kargo's `scopes` plugin for scripts/eg-diff, written from its documented behaviour
// (reference express-gateway.md section 5): when the matched apiEndpoint has scopes, the consumer's
// `scopes` property (an application or user property, stored comma-joined by EG's Redis layer) must
// hold every one of them, else 401 `Unauthorized`; no endpoint scopes: next(). Like the original,
// it reads req.user.scopes without a guard, so a request without a consumer ends in a 500.
module.exports = {
  version: '1.2.0',
  policies: ['scopes'],
  init: function (pluginContext) {
    pluginContext.registerPolicy({
      name: 'scopes',
      schema: { $id: 'http://express-gateway.io/schemas/policies/scopes.json', type: 'object' },
      policy: () => (req, res, next) => {
        const wanted = (req.egContext.apiEndpoint && req.egContext.apiEndpoint.scopes) || [];
        if (wanted.length === 0) return next();
        const held = req.user.scopes.split(',');
        if (wanted.every(s => held.includes(typeof s === 'string' ? s : s.scope))) return next();
        res.sendStatus(401);
      }
    });
  }
};
