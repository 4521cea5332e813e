//! `delete`: deletes DebugBundles as `kubectl delete` does; the operator's finalizer removes
//! each archive from the store before the bundle goes, which --wait (the default) waits for.

use std::time::Duration;

use kube::{
    Api,
    api::DeleteParams,
    runtime::wait::{await_condition, conditions},
};
use velero_debug_crd::{DebugBundle, printable};

use super::parse_timeout;
use crate::{args::DeleteArgs, exit::ExitStatus};

pub(crate) async fn delete(
    api: &Api<DebugBundle>,
    args: &DeleteArgs,
) -> anyhow::Result<ExitStatus> {
    let timeout = parse_timeout(&args.timeout)?;
    let mut status = ExitStatus::Success;
    for name in &args.names {
        if let Err(error) = delete_one(api, name, args.wait, timeout).await {
            // One bundle that cannot go does not keep the others.
            eprintln!("error: {}", printable(&format!("{error:#}")));
            status = ExitStatus::Error;
        }
    }
    Ok(status)
}

async fn delete_one(
    api: &Api<DebugBundle>,
    name: &str,
    wait: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let uid = api.get(name).await?.metadata.uid.unwrap_or_default();
    api.delete(name, &DeleteParams::default()).await?;
    if wait {
        let gone = await_condition(api.clone(), name, conditions::is_deleted(&uid));
        tokio::time::timeout(timeout, gone).await.map_err(|_| {
            anyhow::anyhow!(
                "debugbundle {name:?} is still there after {}s: the operator removes its \
                 archive first (is it running? `kubectl velero-debug describe {name}`)",
                timeout.as_secs()
            )
        })??;
    }
    println!("debugbundle.velerodebug.io {:?} deleted", printable(name));
    Ok(())
}
