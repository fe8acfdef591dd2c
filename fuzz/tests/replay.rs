//! Every fuzz target over its committed corpus (`corpus/<target>/`), and over the crashes
//! AFL found and were fixed (`regressions/<target>/`): a plain, quick test for CI.

use std::path::Path;

#[test]
fn every_target_replays_its_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, target) in switchyard_fuzz::TARGETS {
        let mut inputs = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("corpus entry").path();
                let data = std::fs::read(&path).expect("corpus file");
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name} panicked on {}", path.display());
                inputs += 1;
            }
        }
        assert!(inputs > 0, "{name} has no corpus");
    }
}
