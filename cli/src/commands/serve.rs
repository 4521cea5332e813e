//! `serve`: hands a bundle file, or a DebugBundle's archive downloaded (and verified) into the
//! session's temporary folder, to the server (crate::serve).

use std::path::Path;

use kube::Api;
use velero_debug_crd::DebugBundle;

use super::{archive, parse_timeout};
use crate::{args::ServeArgs, exit::ExitStatus, serve};

fn options(args: &ServeArgs) -> serve::Options {
    serve::Options {
        port: args.port,
        shell: args.shell,
        max_bytes: args.max_bytes,
    }
}

/// `serve FILE.tar.gz`: no cluster needed.
pub(crate) async fn from_file(args: &ServeArgs) -> anyhow::Result<ExitStatus> {
    let temp = serve::temp_folder(args.dir.as_deref())?;
    serve::serve(temp, Path::new(&args.bundle), &options(args)).await?;
    Ok(ExitStatus::Success)
}

/// `serve NAME`: the DebugBundle's archive downloaded into the temporary folder first.
pub(crate) async fn from_cluster(
    api: &Api<DebugBundle>,
    args: &ServeArgs,
) -> anyhow::Result<ExitStatus> {
    let bundle = api.get(&args.bundle).await?;
    let temp = serve::temp_folder(args.dir.as_deref())?;
    let path = temp.path().join("bundle.tar.gz");
    archive::save(api, bundle, &path, parse_timeout(&args.timeout)?).await?;
    serve::serve(temp, &path, &options(args)).await?;
    Ok(ExitStatus::Success)
}
