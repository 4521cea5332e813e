//! The process's own resources, read from /proc/self when scraped, under the names every
//! Prometheus client uses (`process_*`, no prefix): memory is the budget the benchmarks hold
//! the operator to, and alerts and dashboards know these names.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::{Registry, Unit},
};

pub(super) struct ProcessMetrics {
    resident: Gauge<i64, AtomicI64>,
    cpu: Counter<f64, AtomicU64>,
    open_fds: Gauge<i64, AtomicI64>,
    threads: Gauge<i64, AtomicI64>,
    /// CPU seconds already counted: the counter grows by what /proc adds since.
    cpu_counted: std::sync::Mutex<f64>,
}

impl ProcessMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let resident = Gauge::<i64, AtomicI64>::default();
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory size",
            Unit::Bytes,
            resident.clone(),
        );
        let cpu = Counter::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "process_cpu",
            "Total user and system CPU time spent",
            Unit::Seconds,
            cpu.clone(),
        );
        let open_fds = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "process_open_fds",
            "Open file descriptors",
            open_fds.clone(),
        );
        let threads = Gauge::<i64, AtomicI64>::default();
        registry.register("process_threads", "OS threads", threads.clone());
        Self {
            resident,
            cpu,
            open_fds,
            threads,
            cpu_counted: std::sync::Mutex::new(0.0),
        }
    }

    /// Reads /proc/self now; a value that cannot be read keeps its last one.
    pub fn refresh(&self) {
        let Ok(me) = procfs::process::Process::myself() else {
            return;
        };
        if let Ok(stat) = me.stat() {
            let page = procfs::page_size() as i64;
            self.resident.set(stat.rss as i64 * page);
            self.threads.set(stat.num_threads);
            let ticks = procfs::ticks_per_second().max(1) as f64;
            let seconds = (stat.utime + stat.stime) as f64 / ticks;
            let mut counted = self.cpu_counted.lock().unwrap_or_else(|e| e.into_inner());
            if seconds > *counted {
                self.cpu.inc_by(seconds - *counted);
                *counted = seconds;
            }
        }
        if let Ok(fds) = me.fd_count() {
            self.open_fds.set(fds as i64);
        }
    }
}
