//! Readiness for `/readyz`: the process has started, and every watch its controllers run has
//! listed its objects. A watch whose list fails (the API server refuses it, a CRD is missing)
//! keeps the process not ready, and says why in the log at warn level, until a list succeeds:
//! a controller that cannot list processes nothing, and must not look healthy. A watch counts
//! only while its controller runs: a standby (or a leader between terms) runs none, and is
//! ready.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use kube::runtime::watcher;

#[derive(Debug, Clone, PartialEq)]
enum WatchState {
    /// The first list has not finished yet.
    Listing,
    Listed,
    ListFailed(String),
}

#[derive(Default)]
pub(crate) struct Readiness {
    started: AtomicBool,
    watches: Mutex<BTreeMap<&'static str, WatchState>>,
}

impl Readiness {
    /// The process reached the API server and serves: it leads, or waits as a standby.
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Relaxed);
    }

    /// Registers the watch `name` (not ready until it has listed).
    pub fn watch(self: &Arc<Self>, name: &'static str) -> WatchHealth {
        self.set(name, WatchState::Listing);
        WatchHealth {
            readiness: self.clone(),
            name,
        }
    }

    /// `Ok` when ready, else why not, a line per cause.
    pub fn check(&self) -> Result<(), String> {
        if !self.started.load(Ordering::Relaxed) {
            return Err("starting".into());
        }
        let watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        let causes: Vec<String> = watches
            .iter()
            .filter_map(|(name, state)| match state {
                WatchState::Listed => None,
                WatchState::Listing => Some(format!("{name}: listing")),
                WatchState::ListFailed(why) => Some(format!("{name}: cannot list: {why}")),
            })
            .collect();
        if causes.is_empty() {
            Ok(())
        } else {
            Err(causes.join("\n"))
        }
    }

    fn set(&self, name: &'static str, state: WatchState) -> Option<WatchState> {
        let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        watches.insert(name, state)
    }

    fn forget(&self, name: &'static str) {
        let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        watches.remove(name);
    }
}

/// What one watch reports to [`Readiness`], from the events of its stream.
pub(crate) struct WatchHealth {
    readiness: Arc<Readiness>,
    name: &'static str,
}

impl WatchHealth {
    pub fn observe<K>(&self, event: &Result<watcher::Event<K>, watcher::Error>) {
        let name = self.name;
        match event {
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            // A list finished, or objects arrive from the watch that follows one.
            Ok(watcher::Event::InitDone | watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                let before = self.readiness.set(name, WatchState::Listed);
                if matches!(before, Some(WatchState::ListFailed(_))) {
                    tracing::info!(watch = name, "listing works again; ready");
                }
            }
            Err(e @ watcher::Error::InitialListFailed(_)) => {
                let why = e.to_string();
                tracing::warn!(watch = name, error = %why, "cannot list; not ready until it can");
                self.readiness.set(name, WatchState::ListFailed(why));
            }
            // A watch that broke after a good list is reopened by the watcher (relisting when
            // it must); what was listed is still served meanwhile.
            Err(e) => tracing::warn!(watch = name, error = %e, "watch failed; reopening it"),
        }
    }
}

/// The watch stopped with its controller (the term ended): it no longer counts.
impl Drop for WatchHealth {
    fn drop(&mut self) {
        self.readiness.forget(self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Box<kube::core::Status> {
        Box::new(kube::core::Status::failure("forbidden", "Forbidden").with_code(code))
    }

    fn list_error() -> Result<watcher::Event<()>, watcher::Error> {
        Err(watcher::Error::InitialListFailed(kube::Error::Api(status(
            403,
        ))))
    }

    fn watch_error() -> Result<watcher::Event<()>, watcher::Error> {
        Err(watcher::Error::WatchError(status(500)))
    }

    #[test]
    fn ready_once_started_and_every_watch_listed() {
        let readiness = Arc::new(Readiness::default());
        assert_eq!(readiness.check(), Err("starting".into()));
        readiness.set_started();
        assert_eq!(readiness.check(), Ok(()));
        let bundles = readiness.watch("debugbundles");
        let restores = readiness.watch("restores");
        assert_eq!(
            readiness.check(),
            Err("debugbundles: listing\nrestores: listing".into())
        );
        bundles.observe::<()>(&Ok(watcher::Event::Init));
        bundles.observe(&Ok(watcher::Event::InitApply(())));
        bundles.observe::<()>(&Ok(watcher::Event::InitDone));
        restores.observe::<()>(&Ok(watcher::Event::InitDone));
        assert_eq!(readiness.check(), Ok(()));
    }

    #[test]
    fn a_failing_list_is_not_ready_until_a_list_succeeds() {
        let readiness = Arc::new(Readiness::default());
        readiness.set_started();
        let bundles = readiness.watch("debugbundles");
        bundles.observe(&list_error());
        let why = readiness.check().unwrap_err();
        assert!(why.starts_with("debugbundles: cannot list: "), "{why}");
        assert!(why.contains("forbidden"), "{why}");
        bundles.observe::<()>(&Ok(watcher::Event::Init));
        assert!(readiness.check().is_err(), "still listing");
        bundles.observe::<()>(&Ok(watcher::Event::InitDone));
        assert_eq!(readiness.check(), Ok(()));
    }

    #[test]
    fn a_stopped_watch_no_longer_counts() {
        let readiness = Arc::new(Readiness::default());
        readiness.set_started();
        let bundles = readiness.watch("debugbundles");
        bundles.observe(&list_error());
        assert!(readiness.check().is_err());
        drop(bundles);
        assert_eq!(readiness.check(), Ok(()));
    }

    #[test]
    fn a_broken_watch_after_a_good_list_stays_ready_until_it_relists() {
        let readiness = Arc::new(Readiness::default());
        readiness.set_started();
        let bundles = readiness.watch("debugbundles");
        bundles.observe::<()>(&Ok(watcher::Event::InitDone));
        bundles.observe(&watch_error());
        assert_eq!(readiness.check(), Ok(()));
        bundles.observe::<()>(&Ok(watcher::Event::Init));
        bundles.observe(&list_error());
        assert!(readiness.check().is_err());
        bundles.observe(&Ok(watcher::Event::Apply(())));
        assert_eq!(readiness.check(), Ok(()));
    }
}
