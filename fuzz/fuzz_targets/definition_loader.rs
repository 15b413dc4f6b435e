//! Loads arbitrary text as an API definition, as YAML and as JSON. `load` must report every
//! problem as a diagnostic; a panic (or runaway time/memory) is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use micro_gw::loader::{load, SourceFile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for name in ["api.yaml", "api.json"] {
        let files = [SourceFile {
            name: name.into(),
            text: text.to_owned(),
        }];
        match load("fuzz", &files) {
            Ok(loaded) => {
                // A model the loader accepts must survive the trip into the generated gateway
                // (serialized to JSON, read back by the runtime) and be one it can route.
                let json = serde_json::to_vec(&loaded.model).expect("the model serializes");
                let back = mgw_runtime::model::GatewayModel::from_json(&json)
                    .expect("the runtime reads the model the toolkit wrote");
                assert_eq!(
                    back, loaded.model,
                    "the model changed on its way through JSON"
                );
                assert!(
                    mgw_runtime::router::Router::build(&back).is_ok(),
                    "the loader accepted a model the router refuses"
                );
            }
            Err(failed) => {
                assert!(
                    !failed.error.errors.is_empty(),
                    "load failed without an error"
                );
            }
        }
    }
});
