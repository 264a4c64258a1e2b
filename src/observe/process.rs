//! This process's own resource use, read from the kernel: CPU time (getrusage), resident
//! memory (/proc/self/statm) and the cores it may run on. The worker's heartbeat and the
//! generator's self-check both read them here.

use std::time::Instant;

/// CPU time this process has used so far (user + system), seconds.
pub fn cpu_time_s() -> f64 {
    // SAFETY: getrusage only writes the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return 0.0;
        }
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    }
}

/// Resident memory, bytes, where the kernel says.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no memory effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Cores this process may use (CPU affinity and cgroup quota), at least 1.
pub fn usable_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU use between two readings, as Locust's heartbeat reports it: percent of one core.
#[derive(Debug)]
pub struct CpuMeter {
    last_cpu_s: f64,
    last_wall: Instant,
}

impl Default for CpuMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuMeter {
    /// Starts measuring now.
    pub fn new() -> Self {
        Self {
            last_cpu_s: cpu_time_s(),
            last_wall: Instant::now(),
        }
    }

    /// Percent of one core used since the last reading (one decimal), and starts anew.
    pub fn percent(&mut self) -> f64 {
        let cpu = cpu_time_s();
        let wall = self.last_wall.elapsed().as_secs_f64();
        let p = if wall > 0.0 {
            (cpu - self.last_cpu_s) / wall * 100.0
        } else {
            0.0
        };
        self.last_cpu_s = cpu;
        self.last_wall = Instant::now();
        (p.max(0.0) * 10.0).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_shows_as_cpu() {
        let mut m = CpuMeter::new();
        let t0 = Instant::now();
        let mut x = 0u64;
        while t0.elapsed().as_millis() < 50 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let p = m.percent();
        assert!(p > 20.0, "a busy loop uses CPU: {p}%");
        assert!(rss_bytes().is_some_and(|b| b > 0));
        assert!(usable_cores() >= 1);
    }
}
