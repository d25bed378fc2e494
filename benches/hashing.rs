//! bcrypt hash and verify at costs 4 to 14, and argon2id from OWASP's minimum up: the one
//! expensive thing an auth crate does. `benches/hashing_vs_c.py` compares both with the C
//! reference implementations in one run.
//!
//! ```sh
//! cargo bench --bench hashing                 # about 1.5 min on 2 cores
//! cargo bench --bench hashing -- --quick      # a rougher figure in about 30 s
//! cargo bench --bench hashing -- cost_10      # one cost only
//! ```
//!
//! Each cost is its own group (`bcrypt/cost_N`) with `hash` and `verify`. Every cost step
//! doubles the work, so the sample count and measurement time shrink as the cost grows;
//! costs 10 and up use flat sampling (one hash per iteration, no growing batches).
//!
//! The `pool` group measures the [`HashPool`] itself: `verify_x{2*permits}` runs twice as
//! many cost-8 verifications as there are permits through the pool at once, so its time per
//! job, compared with `bcrypt/cost_8/verify`, shows how close the pool comes to
//! `permits / single-hash time` (target: at least 90%).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use tower_auth::password::{Argon2Params, Argon2id, Bcrypt, HashPool, PasswordHasher};

const PASSWORD: &str = "correct horse battery staple";

/// (cost, samples, measurement time): roughly 2-12 s per function.
const COSTS: [(u32, usize, u64); 6] = [
    (4, 100, 2),
    (6, 50, 2),
    (8, 30, 3),
    (10, 15, 4),
    (12, 10, 4),
    (14, 10, 12),
];

fn bcrypt_costs(c: &mut Criterion) {
    for (cost, samples, secs) in COSTS {
        let mut group = c.benchmark_group(format!("bcrypt/cost_{cost}"));
        group
            .sample_size(samples)
            .measurement_time(Duration::from_secs(secs))
            .warm_up_time(Duration::from_millis(if cost >= 12 { 100 } else { 500 }));
        if cost >= 10 {
            group.sampling_mode(SamplingMode::Flat);
        }
        hash_and_verify(&mut group, &Bcrypt::new(cost));
        group.finish();
    }
}

/// `hash` and `verify` of one hasher, in `group`.
fn hash_and_verify(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    hasher: &impl PasswordHasher,
) {
    let stored = hasher.hash(PASSWORD).expect("hash");
    group.bench_function("hash", |b| {
        b.iter(|| hasher.hash(black_box(PASSWORD)).expect("hash"));
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            assert!(
                hasher
                    .verify(black_box(PASSWORD), black_box(&stored))
                    .expect("verify")
            );
        });
    });
}

/// argon2id hash and verify at OWASP's minimum memory and up (`argon2id/m_<MiB>_t_<passes>`).
fn argon2id_settings(c: &mut Criterion) {
    for (memory_kib, passes) in [(19 * 1024, 2), (46 * 1024, 1), (64 * 1024, 2)] {
        let mut group = c.benchmark_group(format!("argon2id/m_{}_t_{passes}", memory_kib / 1024));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(300))
            .sampling_mode(SamplingMode::Flat);
        hash_and_verify(
            &mut group,
            &Argon2id::new(Argon2Params::new(memory_kib, passes, 1)),
        );
        group.finish();
    }
}

/// Throughput of the bounded pool with every permit busy: jobs per second should approach
/// `permits / single-verify time`.
fn pool_throughput(c: &mut Criterion) {
    const COST: u32 = 8;
    let permits = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = 2 * permits;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(permits)
        .enable_all()
        .build()
        .expect("runtime");
    let hasher = Bcrypt::new(COST);
    let stored = hasher.hash(PASSWORD).expect("hash");
    let pool = HashPool::new(Arc::new(hasher), permits, 512);

    let mut group = c.benchmark_group("pool");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(jobs as u64));
    group.bench_with_input(
        BenchmarkId::new(format!("verify_x{jobs}"), format!("cost_{COST}")),
        &jobs,
        |b, &jobs| {
            b.to_async(&runtime).iter(|| {
                let pool = pool.clone();
                let stored = stored.clone();
                async move {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..jobs {
                        let pool = pool.clone();
                        let stored = stored.clone();
                        set.spawn(async move { pool.verify(PASSWORD.to_owned(), stored).await });
                    }
                    while let Some(done) = set.join_next().await {
                        assert!(done.expect("join").expect("verify"));
                    }
                }
            });
        },
    );
    group.finish();
}

criterion_group!(benches, bcrypt_costs, argon2id_settings, pool_throughput);
criterion_main!(benches);
