//! How expensive is each bcrypt cost on this machine, and which one to choose.
//!
//! ```sh
//! cargo run --release --example bcrypt_cost -- --target-ms 250
//! cargo run --release --example bcrypt_cost -- --only 10 --samples 5   # "10<TAB>ms", for scripts
//! ```
//!
//! Prints the median time of one hash at each cost (4 upwards, until a cost takes more than
//! twice the target), the login throughput the machine could sustain at that cost with every
//! core hashing, and the cost `tower_auth::password::calibrate` recommends for the target.
//! Build with `--release`: a debug build of bcrypt is many times slower.

use std::time::Duration;

use clap::Parser;
use tower_auth::password::{calibrate, time_hash_median};

/// Measures bcrypt costs on this machine and recommends one.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// The longest a single hash (one login) may take, in milliseconds. OWASP suggests
    /// keeping login hashing under about a second; 250 ms is a common choice.
    #[arg(long, default_value_t = 250)]
    target_ms: u64,
    /// Hashes timed per cost (the median is printed).
    #[arg(long, default_value_t = 3)]
    samples: usize,
    /// Highest cost to measure (default: stop at the first cost over twice the target).
    #[arg(long)]
    max_cost: Option<u32>,
    /// Only time these costs and print `cost<TAB>ms` lines, with no recommendation.
    #[arg(long, value_delimiter = ',')]
    only: Vec<u32>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if !args.only.is_empty() {
        for &cost in &args.only {
            println!("{cost}\t{:.2}", ms(time_hash_median(cost, args.samples)?));
        }
        return Ok(());
    }

    let target = Duration::from_millis(args.target_ms);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run with --release for meaningful figures");
    }
    println!(
        "bcrypt on this machine: {cores} core(s), median of {} hash(es) per cost",
        args.samples.max(1)
    );
    println!();
    println!("| cost | ms per hash | logins/s with {cores} core(s) hashing |");
    println!("|-----:|------------:|------------------------------:|");
    for cost in 4..=args.max_cost.unwrap_or(31).min(31) {
        let time = time_hash_median(cost, args.samples)?;
        let marker = if time <= target { "" } else { " (over target)" };
        println!(
            "| {cost:>4} | {:>11.1} | {:>29.1} |{marker}",
            ms(time),
            cores as f64 / time.as_secs_f64()
        );
        if args.max_cost.is_none() && time > 2 * target {
            break;
        }
    }
    println!();
    let recommended = calibrate(target)?;
    println!(
        "recommended cost for at most {} ms per hash: {recommended} \
         (tower_auth::password::calibrate; set AuthConfig::bcrypt_cost)",
        args.target_ms
    );
    Ok(())
}
