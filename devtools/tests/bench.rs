//! The benchmark's raw-transfer floor against the real simulator: it sends exactly the
//! requests a period of the default gatherers makes, and reads every byte of their answers.

use testkit as common;

use gather_devtools::bench::{self, Mode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_replays_every_request_of_a_period() {
    let sim = common::start_sample().await;
    let work = tempfile::tempdir().unwrap();
    let kubeconfig = work.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let modules = common::modules_dir(work.path());
    let out = work.path().join("out");

    let period = bench::periods(Mode::Wasm, &kubeconfig, &modules, &out, 1).await.unwrap();
    let floor = bench::floor(&kubeconfig, &modules, &out, 2).await.unwrap();
    assert_eq!(floor.rounds, 2);
    assert!(period.requests > 20, "{period:?}");
    assert_eq!(floor.requests, period.requests, "the floor sends what the gatherers asked for, no more, no less");
    // One sequence per gatherer that asked for anything (every default gatherer does).
    assert_eq!(floor.sequences, period.gatherers.len(), "{:?}", period.gatherers);
    // Every answer is read to its end: at least the bytes the gatherers wrote as records
    // (records are those answers minus managedFields, or smaller projections of them).
    assert!(floor.bytes >= period.bytes_emitted / 2 && floor.bytes > 100_000, "{floor:?} vs {period:?}");
    assert!(floor.wall.min > 0.0 && floor.wall.min <= floor.wall.median && floor.wall.median <= floor.wall.max);
}
