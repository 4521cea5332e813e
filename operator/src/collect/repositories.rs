//! The backup repositories of the target's storage location (one per volume namespace and
//! repository type), their maintenance Jobs (the latest few per repository), those jobs' pods,
//! and the logs of the maintenance that matters: a repository NotReady, or a maintenance that
//! fails, explains volume operations that fail.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{Api, ResourceExt, api::ListParams};

use super::{CollectError, Found, Sink, Sources, logs, sources::Unlisted};
use crate::{kubernetes, tar_gz::EntryPath, velero};

/// Jobs kept per repository: Velero keeps 3 (`--keep-latest-maintenance-jobs`).
const JOBS_PER_REPOSITORY: usize = 3;
/// Maintenance pods whose logs are read: the latest job of each repository, when it failed
/// or serves the target's volumes.
const MAX_MAINTENANCE_LOGS: usize = 10;
/// Their folder under logs/.
const LOG_GROUP: &str = "repo-maintenance";

/// What a maintenance job maintains: volume namespace, storage location, repository type.
type Identity = (String, String, String);

pub(super) async fn all(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
) -> Result<(), CollectError> {
    let location = found
        .summary
        .evidence
        .target
        .storage_location
        .clone()
        .unwrap_or_else(|| src.location.name.clone());
    let repositories = repositories(src, out, found, &location).await?;
    if repositories.is_empty() {
        return Ok(());
    }
    let jobs = maintenance_jobs(src, out, found, &location, &repositories).await?;
    if jobs.is_empty() {
        return Ok(());
    }
    let pods = maintenance_pods(src, out, found, &jobs).await?;
    logs::read_logs_of(src, out, found, &pods, None).await
}

/// The location's BackupRepositories, found by Velero's label and checked by their spec.
async fn repositories(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    location: &str,
) -> Result<BTreeSet<Identity>, CollectError> {
    let api = src.dynamic_api("BackupRepository");
    let selector = velero::selector(velero::STORAGE_LOCATION_LABEL, location);
    let items = match src
        .list_optional(
            out,
            &api,
            ListParams::default().labels(&selector),
            "BackupRepositories",
        )
        .await
    {
        Ok(items) => items,
        Err(Unlisted::NotServed) => {
            if !found.summary.evidence.operation_counts.is_empty() {
                out.warn("BackupRepositories: none, the BackupRepository CRD is not installed");
            }
            return Ok(BTreeSet::new());
        }
        Err(Unlisted::Failed) => return Ok(BTreeSet::new()),
    };
    let resource = velero::resource("BackupRepository");
    let mut identities = BTreeSet::new();
    for repo in items {
        let spec = &repo.data["spec"];
        if spec["backupStorageLocation"] != location {
            continue;
        }
        let text = |key: &str| spec[key].as_str().unwrap_or_default().to_string();
        identities.insert((
            text("volumeNamespace"),
            location.to_string(),
            text("repositoryType"),
        ));
        let repo = kubernetes::with_types(repo, &resource);
        let path = EntryPath::new(&["resources", "backuprepository"], &repo.name_any(), "yaml");
        let seen = out.add_object_seen(&path, &repo)?;
        found
            .summary
            .evidence
            .infra
            .add_repository(&path.to_string(), &seen);
    }
    Ok(identities)
}

/// A maintenance job's repository, from the arguments Velero gives it.
fn job_identity(job: &Job) -> Option<Identity> {
    let args = job
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .args
        .as_ref()?;
    let arg = |name: &str| {
        let prefix = format!("--{name}=");
        args.iter()
            .find_map(|a| a.strip_prefix(prefix.as_str()))
            .map(str::to_string)
    };
    Some((
        arg("repo-name")?,
        arg("backup-storage-location")?,
        arg("repo-type")?,
    ))
}

/// The latest jobs of each repository, written as YAML; the names of those whose pods matter.
async fn maintenance_jobs(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    location: &str,
    repositories: &BTreeSet<Identity>,
) -> Result<BTreeMap<String, bool>, CollectError> {
    let api: Api<Job> = src.namespaced();
    let selector = ListParams::default().labels(velero::REPOSITORY_NAME_LABEL);
    let Some(jobs) = src
        .list_all(out, &api, selector, "repository maintenance jobs")
        .await
    else {
        return Ok(BTreeMap::new());
    };
    let mut by_repository: BTreeMap<Identity, Vec<Job>> = BTreeMap::new();
    for job in jobs {
        if let Some(id) =
            job_identity(&job).filter(|id| id.1 == location && repositories.contains(id))
        {
            by_repository.entry(id).or_default().push(job);
        }
    }
    let served: BTreeSet<String> = found
        .summary
        .evidence
        .operations
        .iter()
        .filter_map(|o| o.namespace.clone())
        .collect();
    // Job name -> whether its pod's log is read.
    let mut kept = BTreeMap::new();
    let mut logs = 0;
    for (id, mut jobs) in by_repository {
        jobs.sort_by_key(|job| std::cmp::Reverse(job.creation_timestamp()));
        for (i, job) in jobs.into_iter().take(JOBS_PER_REPOSITORY).enumerate() {
            let failed = job.status.as_ref().and_then(|s| s.failed).unwrap_or(0) > 0;
            let read_log =
                i == 0 && (failed || served.contains(&id.0)) && logs < MAX_MAINTENANCE_LOGS;
            logs += usize::from(read_log);
            let path = EntryPath::new(&["resources", "job"], &job.name_any(), "yaml");
            let seen = out.add_object_seen(&path, &job)?;
            found
                .summary
                .evidence
                .infra
                .add_maintenance_job(&path.to_string(), &seen);
            kept.insert(job.name_any(), read_log);
        }
    }
    Ok(kept)
}

/// The pods of the kept jobs (by the `job-name` label Kubernetes gives them), written as YAML;
/// those whose logs are read.
async fn maintenance_pods(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    jobs: &BTreeMap<String, bool>,
) -> Result<logs::GroupedPods, CollectError> {
    let api: Api<Pod> = src.namespaced();
    let selector = ListParams::default().labels(velero::REPOSITORY_NAME_LABEL);
    let Some(pods) = src
        .list_all(out, &api, selector, "repository maintenance pods")
        .await
    else {
        return Ok(Vec::new());
    };
    let mut logged = Vec::new();
    for pod in pods {
        let labels = pod.labels();
        let job = labels
            .get("job-name")
            .or_else(|| labels.get("batch.kubernetes.io/job-name"));
        let Some(&read_log) = job.and_then(|j| jobs.get(j)) else {
            continue;
        };
        let path = EntryPath::new(&["pods"], &pod.name_any(), "yaml");
        let seen = out.add_object_seen(&path, &pod)?;
        found
            .summary
            .evidence
            .infra
            .add_maintenance_pod(&path.to_string(), &seen);
        if read_log {
            logged.push((LOG_GROUP, pod));
        }
    }
    Ok(logged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_names_its_repository_by_its_arguments() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "shop-default-kopia-maintain-job-1"},
            "spec": {"template": {"spec": {"containers": [{
                "name": "velero-repo-maintenance-container",
                "args": ["repo-maintenance", "--repo-name=shop", "--repo-type=kopia",
                         "--backup-storage-location=default", "--log-level=info"]
            }]}}}
        }))
        .unwrap();
        assert_eq!(
            job_identity(&job),
            Some(("shop".into(), "default".into(), "kopia".into()))
        );
        let other: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["--repo-name=shop"]}]}}}
        }))
        .unwrap();
        assert_eq!(job_identity(&other), None);
    }
}
