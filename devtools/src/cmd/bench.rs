//! `gather-agent bench`: the performance table of docs/PERFORMANCE.md, measured in one run.
//!
//! For each cluster size it starts the simulator as a child process (`gather-agent sim`), then
//! measures each set of periods in a child of its own (`bench worker-period`): every default
//! gatherer in wasm, the Rust ones in wasm, the same natively, so the simulator's memory and
//! the other runs' never count in a peak RSS; then the raw-transfer floor (`bench
//! worker-floor`), the Go `pods` probe against the Rust `pods` gatherer, and the kubectl peer
//! script (`bench worker-kubectl`). The scale-independent figures (module load, start-up,
//! host-call overhead, archive throughput, the unchanged poll) come last, the poll in a child
//! too. The set of gatherers is whatever is embedded (or in `--modules`): the Rust ones are
//! those with a native build (`native.rs`), the rest are named as having none.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::de::DeserializeOwned;

use crate::bench::{self, ArchiveFigures, CallFigures, FloorFigures, LoadFigures, LoadSetFigures, Mode, PeerFigures, PeriodFigures, PollFigures, Spread, StartupFigures};

/// Arguments of `bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Cluster sizes: `sample` (the sample cluster alone) or N (`sim --scale N`: N more nodes
    /// and 10*N more pods). Comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sample,1000,5000")]
    pub scales: Vec<String>,
    /// Periods measured per mode and size (the table shows the median, fastest and slowest).
    #[arg(long, default_value_t = 5)]
    pub periods: usize,
    /// Cluster sizes (among `--scales`) at which the Go `pods` probe is compared with the
    /// Rust `pods` gatherer.
    #[arg(long, value_delimiter = ',', default_value = "sample,1000")]
    pub go_scales: Vec<String>,
    /// The wasm gatherers. Defaults to the set embedded in the binary.
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
    /// The host-call probe module (`cargo xtask gatherers` builds it into target/bench/;
    /// the default is relative to the working directory, i.e. the repository root).
    #[arg(long, value_name = "FILE", default_value = "target/bench/bench_requests.wasm")]
    pub probe: PathBuf,
    /// The `pods` gatherer written in Go (`gatherers/go/bench-pods`), compared with the Rust one;
    /// skipped when missing.
    #[arg(long, value_name = "FILE", default_value = "target/bench/bench-pods.wasm")]
    pub go_probe: PathBuf,
    /// The fixture cluster the simulator serves. Defaults to the sample cluster embedded in the binary.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// kubectl for the peer script; `none` skips the peer.
    #[arg(long, default_value = "kubectl")]
    pub kubectl: String,
    /// Set only in the child processes the command starts.
    #[command(subcommand)]
    pub job: Option<Job>,
}

/// The child processes' jobs (internal; their arguments mirror the parent's).
#[derive(clap::Subcommand)]
#[allow(missing_docs)]
pub enum Job {
    /// Measure periods of the default gatherers; prints PeriodFigures as JSON.
    #[command(hide = true, name = "worker-period")]
    Period {
        #[arg(long)]
        mode: Mode,
        #[arg(long)]
        kubeconfig: PathBuf,
        #[arg(long)]
        modules: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        periods: usize,
    },
    /// Measure the raw-transfer floor; prints FloorFigures as JSON.
    #[command(hide = true, name = "worker-floor")]
    Floor {
        #[arg(long)]
        kubeconfig: PathBuf,
        #[arg(long)]
        modules: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        periods: usize,
    },
    /// Run the kubectl peer script; prints PeerFigures as JSON.
    #[command(hide = true, name = "worker-kubectl")]
    Kubectl {
        #[arg(long)]
        kubectl: PathBuf,
        #[arg(long)]
        kubeconfig: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure unchanged index polls; prints PollFigures as JSON.
    #[command(hide = true, name = "worker-poll")]
    Poll {
        #[arg(long)]
        modules: PathBuf,
        #[arg(long)]
        work: PathBuf,
    },
}

/// Runs `bench`: the coordinator, or one child job.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.job {
        Some(Job::Period { mode, kubeconfig, modules, out, periods }) => {
            print_json(&bench::periods(mode, &kubeconfig, &modules, &out, periods).await?)
        }
        Some(Job::Floor { kubeconfig, modules, out, periods }) => print_json(&bench::floor(&kubeconfig, &modules, &out, periods).await?),
        Some(Job::Kubectl { kubectl, kubeconfig, out }) => {
            print_json(&tokio::task::spawn_blocking(move || bench::kubectl_peer(&kubectl, &kubeconfig, &out)).await??)
        }
        Some(Job::Poll { modules, work }) => print_json(&bench::unchanged_poll(&modules, &work, 200).await?),
        None => coordinate(args).await,
    }
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

/// Runs `gather-agent [args]` and parses the JSON it prints last.
fn child<T: DeserializeOwned>(args: &[&std::ffi::OsStr]) -> anyhow::Result<T> {
    let exe = std::env::current_exe()?;
    let out = Command::new(&exe).arg("--log").arg("error").args(args).stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        bail!("{} {:?} failed: {}", exe.display(), args, out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("parsing the output of {args:?}: {line}"))
}

/// The simulator as a child process; killed on drop.
struct Sim {
    child: Child,
    kubeconfig: PathBuf,
    nodes: usize,
    pods: usize,
}

impl Sim {
    fn start(fixtures: &Path, scale: u32, dir: &Path) -> anyhow::Result<Sim> {
        let kubeconfig = dir.join(format!("sim-{scale}.kubeconfig"));
        let _ = std::fs::remove_file(&kubeconfig);
        let log = dir.join(format!("sim-{scale}.log"));
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--log", "warn", "sim", "--listen", "127.0.0.1:0", "--scale", &scale.to_string()])
            .arg("--fixtures")
            .arg(fixtures)
            .arg("--write-kubeconfig")
            .arg(&kubeconfig)
            .stdout(std::fs::File::create(&log)?)
            .stderr(Stdio::null())
            .spawn()
            .context("starting the simulator")?;
        let started = Instant::now();
        while !kubeconfig.exists() {
            if let Some(status) = child.try_wait()? {
                bail!("the simulator exited ({status}); see {}", log.display());
            }
            if started.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                bail!("the simulator did not start within 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let count = |resource: &str| {
            text.lines()
                .find(|l| l.split_whitespace().nth(1) == Some(resource))
                .and_then(|l| l.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Ok(Sim { nodes: count("nodes"), pods: count("pods"), child, kubeconfig })
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct ScaleRow {
    label: String,
    nodes: usize,
    pods: usize,
    /// Every default gatherer, in wasm.
    all: PeriodFigures,
    /// The raw-transfer floor of `all`'s requests.
    floor: FloorFigures,
    /// The Rust gatherers in wasm, and natively.
    wasm: PeriodFigures,
    native: PeriodFigures,
    peer: Option<PeerFigures>,
    /// Periods of the `pods` gatherer alone: (Rust, Go), when the Go probe is built.
    pods_alone: Option<(PeriodFigures, PeriodFigures)>,
}

/// Writes embedded files (`name` relative, `/`-separated) under `dir`, for the inputs the
/// bench hands to child processes by path.
fn materialize(dir: &Path, files: &[gather_defaults::EmbeddedFile]) -> anyhow::Result<PathBuf> {
    for f in files {
        let path = dir.join(f.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, f.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(dir.to_owned())
}

/// The inputs with no flag given come from the binary's embedded set, written to `work`.
struct Inputs {
    modules: PathBuf,
    fixtures: PathBuf,
}

/// The default set as built, split by whether a gatherer has a native build.
struct DefaultSet {
    /// Every module file with its bytes, sorted by name.
    modules: Vec<(String, Vec<u8>)>,
    /// The names of those with a native build (the Rust gatherers).
    rust: Vec<String>,
    /// Those without one, each with why (a Go guest, or a module this binary does not link).
    no_native: Vec<(String, &'static str)>,
}

fn default_set(dir: &Path) -> anyhow::Result<DefaultSet> {
    let mut modules: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}: run `cargo xtask gatherers`", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .map(|p| Ok((p.file_name().unwrap_or_default().to_string_lossy().into_owned(), std::fs::read(&p)?)))
        .collect::<std::io::Result<_>>()?;
    modules.sort();
    let (mut rust, mut no_native) = (Vec::new(), Vec::new());
    for (file, bytes) in &modules {
        let name = file.trim_end_matches(".wasm").to_owned();
        if crate::native::has_native_build(&name) {
            rust.push(name);
        } else {
            no_native.push((name, if bench::imports_wasi(bytes) { "Go" } else { "not linked into this binary" }));
        }
    }
    for g in crate::native::default_gatherers() {
        if !rust.contains(&g.manifest.name) {
            bail!("{}.wasm is missing from {}: run `cargo xtask gatherers`", g.manifest.name, dir.display());
        }
    }
    Ok(DefaultSet { modules, rust, no_native })
}

async fn coordinate(args: BenchArgs) -> anyhow::Result<()> {
    let load_at_start = bench::loadavg();
    let work = tempfile::tempdir()?;
    let inputs = Inputs {
        modules: match &args.modules {
            Some(dir) => dir.clone(),
            None => materialize(&work.path().join("embedded-modules"), gather_defaults::modules())?,
        },
        fixtures: match &args.fixtures {
            Some(dir) => dir.clone(),
            None => materialize(&work.path().join("embedded-sample"), gather_defaults::sample_cluster())?,
        },
    };
    let started = Instant::now();
    let set = default_set(&inputs.modules)?;
    // wasm ÷ native compares the gatherers that have both builds: the Rust ones.
    let rust_modules = work.path().join("rust-modules");
    std::fs::create_dir_all(&rust_modules)?;
    for name in &set.rust {
        let file = format!("{name}.wasm");
        std::fs::copy(inputs.modules.join(&file), rust_modules.join(&file))?;
    }
    let mut rows = Vec::new();
    for label in &args.scales {
        let scale: u32 = if label == "sample" { 0 } else { label.parse().with_context(|| format!("--scales: {label:?} is not `sample` or a number"))? };
        eprintln!("bench: cluster {label}: starting the simulator");
        let sim = Sim::start(&inputs.fixtures, scale, work.path())?;
        let periods = args.periods.to_string();
        let out = work.path().join("out");
        let measure_dir = |mode: Mode, modules: &Path| -> anyhow::Result<PeriodFigures> {
            eprintln!("bench: cluster {label}: {} periods, {mode:?}, {}", args.periods, modules.display());
            let mode_arg = if mode == Mode::Wasm { "wasm" } else { "native" };
            child(&["bench".as_ref(), "worker-period".as_ref(), "--mode".as_ref(), mode_arg.as_ref(),
                    "--kubeconfig".as_ref(), sim.kubeconfig.as_os_str(), "--modules".as_ref(), modules.as_os_str(),
                    "--out".as_ref(), out.as_os_str(), "--periods".as_ref(), periods.as_ref()])
        };
        let all = measure_dir(Mode::Wasm, &inputs.modules)?;
        eprintln!("bench: cluster {label}: the raw-transfer floor, {} rounds", args.periods);
        let floor: FloorFigures = child(&["bench".as_ref(), "worker-floor".as_ref(), "--kubeconfig".as_ref(), sim.kubeconfig.as_os_str(),
            "--modules".as_ref(), inputs.modules.as_os_str(), "--out".as_ref(), out.as_os_str(), "--periods".as_ref(), periods.as_ref()])?;
        let wasm = measure_dir(Mode::Wasm, &rust_modules)?;
        let native = measure_dir(Mode::Native, &rust_modules)?;
        // The same gatherer in Rust and in Go, each alone in its period.
        let pods_alone = if args.go_probe.exists() && args.go_scales.contains(label) {
            let alone = |file: &Path, dir: &str| -> anyhow::Result<PathBuf> {
                let d = work.path().join(dir);
                std::fs::create_dir_all(&d)?;
                std::fs::copy(file, d.join(file.file_name().unwrap_or_default()))?;
                Ok(d)
            };
            let rust = measure_dir(Mode::Wasm, &alone(&inputs.modules.join("pods.wasm"), "pods-rust")?)?;
            let go = measure_dir(Mode::Wasm, &alone(&args.go_probe, "pods-go")?)?;
            Some((rust, go))
        } else {
            None
        };
        let peer = if args.kubectl == "none" {
            None
        } else {
            eprintln!("bench: cluster {label}: the kubectl peer script");
            let out = work.path().join("kubectl");
            Some(child::<PeerFigures>(&["bench".as_ref(), "worker-kubectl".as_ref(), "--kubectl".as_ref(), args.kubectl.as_ref(),
                "--kubeconfig".as_ref(), sim.kubeconfig.as_os_str(), "--out".as_ref(), out.as_os_str()])?)
        };
        rows.push(ScaleRow { label: label.clone(), nodes: sim.nodes, pods: sim.pods, all, floor, wasm, native, peer, pods_alone });
    }

    eprintln!("bench: module load, start-up, host calls, archive, poll");
    let modules = set.modules.clone();
    // Go modules (WASI guests, with `_initialize`): the whole start-up of a run, median of 20.
    let go: Vec<(String, Vec<u8>)> = modules.iter().filter(|(f, _)| set.no_native.iter().any(|(n, why)| *why == "Go" && format!("{n}.wasm") == *f)).cloned().collect();
    let startups = tokio::task::spawn_blocking(move || {
        go.iter().map(|(name, bytes)| bench::startup_figures(name, bytes, 20)).collect::<Result<Vec<_>, _>>()
    })
    .await??;
    let all_modules = modules.clone();
    let load_set = tokio::task::spawn_blocking(move || bench::load_set_figures(&all_modules, 20)).await??;
    let loads = tokio::task::spawn_blocking(move || bench::load_figures(&modules, 20)).await??;
    let probe = std::fs::read(&args.probe).with_context(|| format!("reading {}: run `cargo xtask gatherers`", args.probe.display()))?;
    let calls = tokio::task::spawn_blocking(move || bench::host_call_overhead(&probe, 20_000)).await??;
    let archive_dir = work.path().join("archive");
    let fixtures = inputs.fixtures.clone();
    let archive = tokio::task::spawn_blocking(move || bench::archive_throughput(&archive_dir, &fixtures, 64_000_000)).await??;
    let poll: PollFigures = child(&["bench".as_ref(), "worker-poll".as_ref(), "--modules".as_ref(), inputs.modules.as_os_str(),
        "--work".as_ref(), work.path().join("poll").as_os_str()])?;

    let machine = Machine { load_at_start, load_at_end: bench::loadavg(), periods: args.periods };
    print_table(&machine, &set, &rows, &Scalefree { loads, load_set, startups, calls, archive, poll });
    eprintln!("bench: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// What the table says about the run itself.
struct Machine {
    load_at_start: Option<[f64; 3]>,
    load_at_end: Option<[f64; 3]>,
    periods: usize,
}

/// The figures that do not depend on the cluster's size.
struct Scalefree {
    loads: Vec<LoadFigures>,
    load_set: LoadSetFigures,
    startups: Vec<StartupFigures>,
    calls: CallFigures,
    archive: ArchiveFigures,
    poll: PollFigures,
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}×", a / b) } else { "—".into() }
}

/// `median (min–max) ms` of a spread of milliseconds.
fn spread_ms(s: &Spread) -> String {
    format!("{} ms", s.show(0))
}

fn load_text(load: Option<[f64; 3]>) -> String {
    load.map_or("unknown".into(), |[one, five, fifteen]| format!("{one:.2} / {five:.2} / {fifteen:.2}"))
}

fn print_table(machine: &Machine, set: &DefaultSet, rows: &[ScaleRow], fixed: &Scalefree) {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())))
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("gather-agent {} on {cpus} × {cpu_model}", env!("CARGO_PKG_VERSION"));
    println!("load average (1 / 5 / 15 min): {} at the start, {} at the end", load_text(machine.load_at_start), load_text(machine.load_at_end));
    println!("{} periods per row; times are median (min–max); ratios are of medians", machine.periods);
    let no_native: Vec<String> = set.no_native.iter().map(|(n, why)| format!("{n} ({why})")).collect();
    println!(
        "default set: {} gatherers; {} Rust with a native build ({}); no native build: {}\n",
        set.modules.len(),
        set.rust.len(),
        set.rust.join(", "),
        if no_native.is_empty() { "none".into() } else { no_native.join(", ") }
    );

    let mut header = vec!["figure".to_owned()];
    header.extend(rows.iter().map(|r| if r.label == "sample" { "sample".to_owned() } else { format!("--scale {}", r.label) }));
    header.push("target".into());
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut per_scale = |name: &str, f: &dyn Fn(&ScaleRow) -> String, target: &str| {
        let mut line = vec![name.to_owned()];
        line.extend(rows.iter().map(f));
        line.push(target.to_owned());
        table.push(line);
    };
    let n_all = set.modules.len();
    let n_rust = set.rust.len();
    per_scale("cluster: nodes / pods", &|r| format!("{} / {}", r.nodes, r.pods), "");
    per_scale(&format!("**period wall, all {n_all} default gatherers (wasm)**"), &|r| spread_ms(&r.all.wall), "");
    per_scale("raw-transfer floor wall (same requests, bare kube client)", &|r| spread_ms(&r.floor.wall), "");
    per_scale("**period ÷ floor, wall**", &|r| ratio(r.all.wall.median, r.floor.wall.median), "≤ 2× at 5000");
    per_scale("requests / response bytes per period", &|r| format!("{} / {}", r.floor.requests, mb(r.floor.bytes)), "");
    per_scale(&format!("period CPU, all {n_all} (wasm) / floor"), &|r| format!("{:.0} / {:.0} ms", r.all.cpu.median, r.floor.cpu.median), "");
    per_scale(&format!("**peak RSS, all {n_all} (wasm)**"), &|r| mb(r.all.peak_rss_bytes), "≤ 100 MB at 5000");
    per_scale("largest guest memory (one gatherer)", &|r| mb(r.all.guest_memory_peak_bytes), "");
    per_scale("records per period; record bytes → archive", &|r| format!("{}; {} → {}", r.all.records, mb(r.all.bytes_emitted), mb(r.all.archive_bytes)), "");
    per_scale(&format!("period wall, {n_rust} Rust gatherers: wasm"), &|r| spread_ms(&r.wasm.wall), "");
    per_scale(&format!("period wall, {n_rust} Rust gatherers: native"), &|r| spread_ms(&r.native.wall), "");
    per_scale("**wasm ÷ native, wall**", &|r| ratio(r.wasm.wall.median, r.native.wall.median), "≤ 1.3× at 5000");
    per_scale("period CPU: wasm / native", &|r| format!("{:.0} / {:.0} ms", r.wasm.cpu.median, r.native.cpu.median), "");
    per_scale("wasm ÷ native, CPU", &|r| ratio(r.wasm.cpu.median, r.native.cpu.median), "");
    per_scale("peak RSS: wasm / native (Rust gatherers)", &|r| format!("{} / {}", mb(r.wasm.peak_rss_bytes), mb(r.native.peak_rss_bytes)), "");
    per_scale("kubectl script: wall / CPU", &|r| r.peer.as_ref().map_or("—".into(), |p| format!("{:.0} / {:.0} ms", p.wall_ms, p.cpu_ms)), "");
    per_scale("kubectl: largest peak RSS / JSON", &|r| r.peer.as_ref().map_or("—".into(), |p| format!("{} / {}", mb(p.peak_rss_bytes), mb(p.bytes))), "");
    per_scale(&format!("**agent (all {n_all}, wasm) ÷ kubectl script, wall**"), &|r| r.peer.as_ref().map_or("—".into(), |p| ratio(r.all.wall.median, p.wall_ms)), "≤ 0.3×");
    let go = |r: &ScaleRow, f: &dyn Fn(&PeriodFigures, &PeriodFigures) -> String| r.pods_alone.as_ref().map_or("—".into(), |(rust, go)| f(rust, go));
    per_scale("`pods` alone, wall: Go", &|r| go(r, &|_, go| spread_ms(&go.wall)), "");
    per_scale("`pods` alone, wall: Rust", &|r| go(r, &|rust, _| spread_ms(&rust.wall)), "");
    per_scale("**`pods` alone, Go ÷ Rust, wall**", &|r| go(r, &|rust, go| ratio(go.wall.median, rust.wall.median)), "≤ 2×");
    per_scale("`pods` alone, fuel: Go / Rust", &|r| go(r, &|rust, go| format!("{:.2} / {:.2} G", go.fuel_used as f64 / 1e9, rust.fuel_used as f64 / 1e9)), "");
    per_scale("**`pods` alone, guest memory: Go / Rust**", &|r| go(r, &|rust, go| format!("{} / {}", mb(go.guest_memory_peak_bytes), mb(rust.guest_memory_peak_bytes))), "");
    per_scale("`pods` alone, peak RSS (whole process): Go / Rust", &|r| go(r, &|rust, go| format!("{} / {}", mb(go.peak_rss_bytes), mb(rust.peak_rss_bytes))), "");
    let blank = rows.len().saturating_sub(1);
    let mut single = |name: String, value: String, target: &str| {
        let mut line = vec![name, value];
        line.extend(std::iter::repeat_n(String::new(), blank));
        line.push(target.to_owned());
        table.push(line);
    };
    let ls = &fixed.load_set;
    single(
        format!("**load all {} default modules ({:.1} MB): the agent's loader, {} threads**", ls.modules, ls.bytes as f64 / 1e6, ls.threads),
        spread_ms2(&ls.load_set),
        "≤ 50 ms in total",
    );
    single(format!("load all {} default modules, one after another on one thread", ls.modules), spread_ms2(&ls.one_thread), "");
    let (compile, parse): (f64, f64) = fixed.loads.iter().fold((0.0, 0.0), |(c, p), l| (c + l.compile_ms, p + l.parse_ms));
    single(
        format!("load all {}: sum of each module's best compile / of its parse alone (lazy validation, unused)", ls.modules),
        format!("{compile:.1} / {parse:.1} ms"),
        "",
    );
    for l in &fixed.loads {
        single(
            format!("load {} ({:.0} KB): compile + instantiate (eager compile; parse only)", l.name, l.bytes as f64 / 1e3),
            format!("{:.2} + {:.2} ms ({:.2}; {:.2} ms)", l.compile_ms, l.instantiate_ms, l.eager_compile_ms, l.parse_ms),
            "",
        );
    }
    for st in &fixed.startups {
        single(
            format!("**start-up of {} ({:.1} MB, Go): load + instantiate + `_initialize`, {} rounds**", st.name, st.bytes as f64 / 1e6, st.rounds),
            spread_ms2(&st.time),
            "≤ 50 ms (wasmer prototype: 33 s)",
        );
    }
    let calls = &fixed.calls;
    single(
        format!("host call per REST request ({} B body): wasm / native / host only", calls.body_bytes),
        format!("{:.2} / {:.2} / {:.2} µs", calls.wasm_us, calls.native_us, calls.host_us),
        "",
    );
    let archive = &fixed.archive;
    single(
        format!("archive writing ({} of real objects)", mb(archive.input_bytes)),
        format!(
            "{:.0} MB/s, {:.1}:1 (bare gzip -1: {:.0} MB/s; -6: {:.0} MB/s, {:.1}:1)",
            archive.mb_per_s,
            archive.input_bytes as f64 / archive.output_bytes.max(1) as f64,
            archive.gzip_fast_mb_per_s,
            archive.gzip_default_mb_per_s,
            archive.gzip_default_ratio
        ),
        "≥ 100 MB/s",
    );
    let poll = &fixed.poll;
    single(
        format!("unchanged index poll (304), mean of {}", poll.polls),
        format!("{:.2} ms wall, {:.2} ms CPU, {} index bodies, {} module downloads", poll.wall_ms_per_poll, poll.cpu_ms_per_poll, poll.index_bodies, poll.module_downloads),
        "no module download",
    );
    print_markdown(&header, &table);
    for r in rows {
        for (what, f) in [("all, wasm", &r.all), ("Rust, wasm", &r.wasm), ("Rust, native", &r.native)] {
            for failed in &f.failed {
                println!("\nnote: {} {what}: {failed}", r.label);
            }
        }
        if r.floor.requests != r.all.requests {
            println!("\nnote: {}: the floor sent {} requests, the period {}", r.label, r.floor.requests, r.all.requests);
        }
        for failed in r.peer.iter().flat_map(|p| &p.failed) {
            println!("\nnote: {} kubectl: {failed}", r.label);
        }
    }
}

/// `median (min–max) ms` with one decimal, for the short load figures.
fn spread_ms2(s: &Spread) -> String {
    format!("{} ms", s.show(1))
}

fn print_markdown(header: &[String], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([header[i].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("| {} |", cells.join(" | "));
    };
    line(header);
    println!("|{}|", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
    for r in rows {
        line(r);
    }
}
