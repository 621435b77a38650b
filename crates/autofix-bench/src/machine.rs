//! What the numbers were measured on, and the resident memory of a process (Linux `/proc`).

use serde::Serialize;

/// The machine a benchmark ran on, printed with every table.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs this process may use (`nproc`).
    pub nproc: usize,
    /// `model name` of `/proc/cpuinfo`, or `unknown`.
    pub cpu_model: String,
    /// The kernel release (`/proc/sys/kernel/osrelease`), or `unknown`.
    pub kernel: String,
    /// `release` or `debug`: numbers of a debug build are not worth quoting.
    pub build: &'static str,
}

impl Machine {
    /// Reads the machine's description.
    pub fn detect() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            kernel,
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        }
    }

    /// One line: `2 CPUs, <model>, Linux <release>, release build`.
    pub fn line(&self) -> String {
        format!(
            "{} CPUs ({}), Linux {}, {} build",
            self.nproc, self.cpu_model, self.kernel, self.build
        )
    }
}

/// Resident memory of a process, in MiB: now (`VmRSS`) and its high-water mark (`VmHWM`).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    /// Resident set size now, MiB.
    pub rss_mib: f64,
    /// Peak resident set size since the process started, MiB.
    pub hwm_mib: f64,
}

/// Reads `/proc/<pid>/status`; `None` where it does not exist (not Linux, process gone).
pub fn memory_of(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some(Memory {
        rss_mib: field("VmRSS:")?,
        hwm_mib: field("VmHWM:")?,
    })
}

/// CPU time a process has used so far, user and system, over all its threads, in seconds
/// (`utime` + `stime` of `/proc/<pid>/stat`); `None` where it cannot be read.
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    Some((user + system) / ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_resident_memory() {
        let memory = memory_of(std::process::id()).expect("Linux /proc");
        assert!(memory.rss_mib > 0.0 && memory.hwm_mib >= memory.rss_mib);
    }

    /// Spinning shows up as CPU time, and never as more than the wall time it took on every
    /// CPU (a wrong field of `/proc/<pid>/stat`, or a wrong tick rate, breaks one of the two).
    #[test]
    fn this_process_counts_the_cpu_it_spins() {
        let pid = std::process::id();
        let before = cpu_seconds_of(pid).expect("Linux /proc");
        let spin = std::time::Instant::now();
        let mut used = 0.0;
        let mut x = 0u64;
        while used < 0.1 && spin.elapsed() < std::time::Duration::from_secs(20) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            used = cpu_seconds_of(pid).unwrap() - before;
        }
        let most = spin.elapsed().as_secs_f64() * Machine::detect().nproc as f64 + 0.02;
        assert!(
            used >= 0.1 && used <= most,
            "{used} s of CPU in {most} CPU-seconds"
        );
    }

    #[test]
    fn the_machine_names_its_cpus() {
        let machine = Machine::detect();
        assert!(machine.nproc >= 1);
        assert!(machine.line().contains("CPUs"));
    }
}
