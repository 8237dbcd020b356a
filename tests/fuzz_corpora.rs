//! Every input the fuzzers kept (`fuzz/corpus/<target>/`), and every input that once crashed
//! a target (`fuzz/regressions/<target>/`), goes through the fuzz targets' own functions
//! again: a parser change that would panic on any of them fails here, in `.ci/run`, without
//! libFuzzer.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_kept_and_every_once_crashing_input_passes() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failures = Vec::new();
    for (target, run) in targets::TARGETS {
        let mut inputs = 0;
        for folder in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(folder).join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("corpus entry").path();
                let data = std::fs::read(&path).expect("corpus file");
                inputs += 1;
                if std::panic::catch_unwind(|| run(&data)).is_err() {
                    failures.push(path.display().to_string());
                }
            }
        }
        assert!(inputs > 0, "no kept inputs for {target}");
    }
    assert!(failures.is_empty(), "inputs that panic: {failures:?}");
}
