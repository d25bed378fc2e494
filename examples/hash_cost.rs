//! How expensive each bcrypt cost and each argon2id setting is on this machine, and which
//! to choose.
//!
//! ```sh
//! cargo run --release --example hash_cost -- --target-ms 250
//! cargo run --release --example hash_cost -- --bcrypt 10,12 --argon2 19456:2,47104:1   # TSV, for scripts
//! ```
//!
//! Prints the median time of one hash for bcrypt costs 4 upwards and for argon2id from
//! OWASP's minimum (19 MiB, 2 passes) upwards in memory, the logins per second the machine
//! could sustain with every core hashing, and what `tower_auth::password::calibrate` and
//! `calibrate_argon2` recommend for the target. Build with `--release`.

use std::time::Duration;

use clap::Parser;
use tower_auth::password::{
    Argon2Params, calibrate, calibrate_argon2, time_argon2_median, time_hash_median,
};

/// Measures bcrypt and argon2id on this machine and recommends settings.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// The longest a single hash (one login) may take, in milliseconds.
    #[arg(long, default_value_t = 250)]
    target_ms: u64,
    /// Hashes timed per setting (the median is printed).
    #[arg(long, default_value_t = 3)]
    samples: usize,
    /// Most memory argon2id may use per hash, in MiB (the calibration's ceiling).
    #[arg(long, default_value_t = 256)]
    max_memory_mib: u32,
    /// Only time these bcrypt costs; prints `bcrypt<TAB>cost<TAB>ms` lines.
    #[arg(long, value_delimiter = ',')]
    bcrypt: Vec<u32>,
    /// Only time these argon2id settings, `memory_kib:passes`; prints
    /// `argon2id<TAB>m<TAB>t<TAB>ms` lines.
    #[arg(long, value_delimiter = ',')]
    argon2: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn parse_argon2(spec: &str) -> Result<Argon2Params, String> {
    let (m, t) = spec
        .split_once(':')
        .ok_or_else(|| format!("{spec:?}: expected memory_kib:passes"))?;
    let m = m.parse().map_err(|e| format!("{spec:?}: {e}"))?;
    let t = t.parse().map_err(|e| format!("{spec:?}: {e}"))?;
    Ok(Argon2Params::new(m, t, 1))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if !args.bcrypt.is_empty() || !args.argon2.is_empty() {
        for &cost in &args.bcrypt {
            println!(
                "bcrypt\t{cost}\t{:.3}",
                ms(time_hash_median(cost, args.samples)?)
            );
        }
        for spec in &args.argon2 {
            let params = parse_argon2(spec)?;
            let time = time_argon2_median(params, args.samples)?;
            println!(
                "argon2id\t{}\t{}\t{:.3}",
                params.memory_kib,
                params.iterations,
                ms(time)
            );
        }
        return Ok(());
    }

    let target = Duration::from_millis(args.target_ms);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run with --release for meaningful figures");
    }
    println!(
        "on this machine: {cores} core(s), median of {} hash(es) per setting",
        args.samples.max(1)
    );
    println!();
    println!("| bcrypt cost | ms per hash | logins/s, {cores} core(s) |");
    println!("|------------:|------------:|------------------:|");
    for cost in 4..=31 {
        let time = time_hash_median(cost, args.samples)?;
        println!(
            "| {cost:>11} | {:>11.1} | {:>17.1} |",
            ms(time),
            cores as f64 / time.as_secs_f64()
        );
        if time > 2 * target {
            break;
        }
    }
    println!();
    println!("| argon2id m (MiB), t | ms per hash | logins/s, {cores} core(s) | memory at once |");
    println!("|--------------------:|------------:|------------------:|---------------:|");
    let mut memory = Argon2Params::OWASP_MINIMUM.memory_kib;
    while memory <= args.max_memory_mib * 1024 {
        let params = Argon2Params::new(memory, 2, 1);
        let time = time_argon2_median(params, args.samples)?;
        println!(
            "| {:>15}, {} | {:>11.1} | {:>17.1} | {:>10} MiB |",
            memory / 1024,
            params.iterations,
            ms(time),
            cores as f64 / time.as_secs_f64(),
            memory / 1024 * cores as u32
        );
        if time > 2 * target {
            break;
        }
        memory *= 2;
    }
    println!();
    let cost = calibrate(target)?;
    let params = calibrate_argon2(target, args.max_memory_mib * 1024)?;
    println!("for at most {} ms per hash:", args.target_ms);
    println!("  bcrypt:   cost {cost} (AuthConfig::bcrypt_cost)");
    println!(
        "  argon2id: m = {} KiB ({} MiB), t = {}, p = 1 (AuthConfig::argon2, with \
         hash_algorithm = HashAlgorithm::Argon2id; OWASP's minimum is the floor)",
        params.memory_kib,
        params.memory_kib / 1024,
        params.iterations
    );
    println!(
        "  memory: {} MiB while {cores} argon2id hashes run at once (AuthConfig::hash_memory_budget)",
        params.memory_kib / 1024 * cores as u32
    );
    Ok(())
}
