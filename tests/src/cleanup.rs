//! [`Cleanup`]: the guard that undoes what a test made or changed in the cluster when the test
//! ends, however it ends.

use std::{
    sync::{Mutex, PoisonError},
    time::Duration,
};

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Resource,
    api::{DeleteParams, DynamicObject, Patch, PatchParams},
    core::ApiResource,
};

use crate::env::Env;

/// How long dropping a [`Cleanup`] may take before it gives up (and leaves the rest).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Deletes what a test made when dropped: at the test's end, and also when it fails early
/// (`?`, `ensure!`) or panics. Objects are undone in reverse order of registration, like locals
/// are dropped; objects already gone are fine.
pub struct Cleanup {
    env: Env,
    steps: Mutex<Vec<Step>>,
}

#[derive(PartialEq)]
struct Step {
    resource: ApiResource,
    namespace: Option<String>,
    name: String,
    undo: Undo,
}

#[derive(PartialEq)]
enum Undo {
    Delete,
    MergePatch(serde_json::Value),
}

impl Cleanup {
    pub fn new(env: &Env) -> Cleanup {
        Cleanup {
            env: env.clone(),
            steps: Mutex::new(Vec::new()),
        }
    }

    /// Deletes the namespace (and so everything in it).
    pub fn namespace(&self, name: &str) {
        self.delete(&ApiResource::erase::<Namespace>(&()), None, name);
    }

    /// Deletes a namespaced object of a typed kind, e.g. a DebugBundle or a Secret.
    pub fn object<K: Resource<DynamicType = ()>>(&self, namespace: &str, name: &str) {
        self.delete(&ApiResource::erase::<K>(&()), Some(namespace), name);
    }

    /// Deletes an object of a dynamic kind (Velero's, kwok's); `namespace` None for a
    /// cluster-scoped one. Dependents go too (background propagation), e.g. a Restore's
    /// automatic bundle.
    pub fn delete(&self, resource: &ApiResource, namespace: Option<&str>, name: &str) {
        self.push(resource, namespace, name, Undo::Delete);
    }

    /// Applies `patch` (a JSON merge patch) to an object the test changed but did not make.
    pub fn merge_patch(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        patch: serde_json::Value,
    ) {
        self.push(resource, namespace, name, Undo::MergePatch(patch));
    }

    fn push(&self, resource: &ApiResource, namespace: Option<&str>, name: &str, undo: Undo) {
        let step = Step {
            resource: resource.clone(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            undo,
        };
        let mut steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        if !steps.contains(&step) {
            steps.push(step);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let steps = std::mem::take(self.steps.get_mut().unwrap_or_else(PoisonError::into_inner));
        if steps.is_empty() {
            return;
        }
        // Drop cannot await, and the test's runtime is blocked here (a current-thread runtime,
        // which also runs the test client's request worker, so a clone of that client would
        // hang): a thread with a runtime and a client of its own, waited for with a bound.
        let env = self.env.clone();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(undo_all(&env, steps)),
                Err(e) => eprintln!("cleanup: no runtime: {e}"),
            }
            let _ = done.send(());
        });
        if finished.recv_timeout(CLEANUP_TIMEOUT).is_err() {
            eprintln!("cleanup: not finished within {CLEANUP_TIMEOUT:?}; some objects may be left");
        }
    }
}

async fn undo_all(env: &Env, steps: Vec<Step>) {
    let client = match env.client().await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("cleanup: no client: {e:#}");
            return;
        }
    };
    for step in steps.into_iter().rev() {
        let api: Api<DynamicObject> = match &step.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &step.resource),
            None => Api::all_with(client.clone(), &step.resource),
        };
        let result = match &step.undo {
            Undo::Delete => api
                .delete(&step.name, &DeleteParams::background())
                .await
                .map(drop),
            Undo::MergePatch(patch) => api
                .patch(&step.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map(drop),
        };
        match result {
            Ok(()) => {}
            // Gone already, or (a namespace) already being deleted.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => eprintln!("cleanup: {} {}: {e}", step.resource.kind, step.name),
        }
    }
}
