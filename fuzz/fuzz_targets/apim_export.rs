//! The API Manager's export zip (`micro-gw import -l/-a`): the outer zip, `deployments.json`,
//! every inner project zip, `api.json` and `Definitions/swagger.json`, within the unpacking
//! budget (zip bombs, entries named twice, odd paths).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(exported) = micro_gw::apim::export::parse_export("fuzz", data) {
        // At least one deployment was read, as an API or a skipped project.
        assert!(!exported.apis.is_empty() || !exported.skipped.is_empty());
    }
});
