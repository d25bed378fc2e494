//! How expensive each bcrypt cost and each argon2id setting is on this machine, and which
//! to choose.
//!
//! ```sh
//! cargo run --release --example hash_cost -- --target-ms 250
//! cargo run --release --example hash_cost -- --bcrypt 10,12 --argon2 19456:2,47104:1   # TSV, for scripts
//! cargo run --release --example hash_cost -- --svg benches/hash_cost.svg   # and a chart of the tables
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
    /// Also draw the tables as an SVG chart (time per hash against cost) at this path.
    #[arg(long)]
    svg: Option<std::path::PathBuf>,
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
    let mut bcrypt_points = Vec::new();
    let mut argon2_points = Vec::new();
    println!("| bcrypt cost | ms per hash | logins/s, {cores} core(s) |");
    println!("|------------:|------------:|------------------:|");
    for cost in 4..=31 {
        let time = time_hash_median(cost, args.samples)?;
        bcrypt_points.push((cost, ms(time)));
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
        argon2_points.push((memory / 1024, ms(time)));
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
    if let Some(path) = &args.svg {
        chart(path, &bcrypt_points, &argon2_points, ms(target))?;
        println!("chart: {}", path.display());
        println!();
    }
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

/// Two panels, time per hash (log scale) against bcrypt's cost and against argon2id's
/// memory (2 passes), with the target as a dashed line.
fn chart(
    path: &std::path::Path,
    bcrypt: &[(u32, f64)],
    argon2: &[(u32, f64)],
    target_ms: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let root = SVGBackend::new(path, (960, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(480);
    let all = bcrypt.iter().chain(argon2).map(|&(_, ms)| ms);
    let top = all.clone().fold(target_ms, f64::max) * 2.0;
    let bottom = all.fold(target_ms, f64::min) / 2.0;
    let target = |low: u32, high: u32| {
        DashedLineSeries::new(
            [(low, target_ms), (high, target_ms)],
            6,
            4,
            RED.stroke_width(1),
        )
    };

    let (low, high) = (
        bcrypt.first().map_or(4, |p| p.0),
        bcrypt.last().map_or(4, |p| p.0),
    );
    let mut panel = ChartBuilder::on(&left)
        .caption("bcrypt: ms per hash by cost", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(low..high, (bottom..top).log_scale())?;
    panel
        .configure_mesh()
        .x_desc("cost")
        .y_desc("ms per hash (log)")
        .draw()?;
    panel.draw_series(LineSeries::new(
        bcrypt.iter().copied(),
        BLUE.stroke_width(2),
    ))?;
    panel.draw_series(bcrypt.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))?;
    panel.draw_series(target(low, high))?;

    let (low, high) = (
        argon2.first().map_or(19, |p| p.0),
        argon2.last().map_or(19, |p| p.0),
    );
    let mut panel = ChartBuilder::on(&right)
        .caption(
            "argon2id (t = 2, p = 1): ms per hash by memory",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d((low..high).log_scale(), (bottom..top).log_scale())?;
    panel
        .configure_mesh()
        .x_desc("memory (MiB, log)")
        .y_desc("ms per hash (log)")
        .draw()?;
    panel.draw_series(LineSeries::new(
        argon2.iter().copied(),
        GREEN.stroke_width(2),
    ))?;
    panel.draw_series(argon2.iter().map(|&p| Circle::new(p, 3, GREEN.filled())))?;
    panel.draw_series(target(low, high))?;
    root.present()?;
    Ok(())
}
