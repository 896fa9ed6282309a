//! The AFL++ harness: one binary for every target, picked by the
//! environment variable `FUZZ_TARGET` (one build, one link). Built only by
//! `cargo afl build --features afl` (see `fuzz/run.sh`): AFL's runtime is
//! linked in by cargo-afl.

fn main() {
    let name = std::env::var("FUZZ_TARGET").unwrap_or_default();
    let Some(target) = fuzz::target(&name) else {
        let names: Vec<_> = fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!("FUZZ_TARGET must be one of {names:?}, got {name:?}");
        std::process::exit(2);
    };
    let run = target.run;
    // The persistent loop runs on a thread with a tokio worker's stack, so
    // an input nested deep enough to overflow a worker crashes here too.
    let fuzzer = std::thread::Builder::new()
        .stack_size(fuzz::STACK_BYTES)
        .spawn(move || afl::fuzz!(|data: &[u8]| run(data)));
    match fuzzer.map(|h| h.join()) {
        Ok(Ok(())) => {}
        _ => std::process::abort(),
    }
}
