//! Proxies (issue 35): with HTTPS_PROXY, HTTP_PROXY and NO_PROXY set, the operator reaches
//! every object store (S3 over http, GCS over http, Azure over https) through a real forward
//! proxy, Debian's tinyproxy, and the API server directly when NO_PROXY names it or through
//! the proxy when it does not; with the proxy down, the bundle says its store cannot be
//! reached through the proxy.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use velero_debug_crd::Phase;
use velero_debug_e2e::{
    backups::real_backup,
    bundles::{apply_bundle, condition_reason, wait_completed},
    context::TestCtx,
    env::Env,
    forward_proxy::ForwardProxy,
    operators::{OperatorsBack, restart_operators},
    polling::eventually,
};

/// Host and port of a URL (`http://127.0.0.1:9000/x` -> `127.0.0.1:9000`).
fn host_port(url: &str) -> Result<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    ensure!(authority.contains(':'), "{url} has no port");
    Ok(authority.to_string())
}

/// The environment's API server (`https://127.0.0.1:PORT`) and its CA, from the kubeconfig.
fn api_server(env: &Env) -> Result<(String, Vec<u8>)> {
    let config = kube::config::Kubeconfig::read_from(&env.kubeconfig)?;
    let cluster = config
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .context("kubeconfig without a cluster")?;
    let server = cluster.server.context("cluster without a server")?;
    let ca = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(data)?
        }
        (None, Some(path)) => std::fs::read(path).with_context(|| format!("reading {path}"))?,
        (None, None) => anyhow::bail!("the kubeconfig's cluster names no CA"),
    };
    Ok((server, ca))
}

/// The operator's settings: both proxies; with `api_direct`, the API server addressed as
/// `localhost`, which NO_PROXY names (the stores stay on 127.0.0.1, so they are proxied).
fn settings(
    proxy: &str,
    api: &str,
    ca_file: &std::path::Path,
    api_direct: bool,
) -> Vec<(&'static str, String)> {
    let mut s = vec![
        ("HTTPS_PROXY", proxy.to_string()),
        ("HTTP_PROXY", proxy.to_string()),
    ];
    if api_direct {
        s.push(("NO_PROXY", "localhost".to_string()));
        s.push((
            "VDO_OPERATOR_API_SERVER",
            api.replace("127.0.0.1", "localhost"),
        ));
        s.push(("VDO_OPERATOR_API_CA", ca_file.display().to_string()));
    }
    s
}

/// A bundle of `backup` uploaded to `location`, Completed within two minutes.
async fn bundle_to(t: &TestCtx, backup: &str, location: &str) -> Result<()> {
    let spec = serde_json::json!({"backup": backup, "storageLocation": location});
    let name = apply_bundle(t, spec).await?;
    wait_completed(t, &name, Duration::from_secs(120))
        .await
        .with_context(|| format!("bundle to {location}"))?;
    Ok(())
}

fn relayed_to(proxy: &ForwardProxy, host_port: &str) -> bool {
    proxy.requests().iter().any(|r| r.contains(host_port))
}

#[tokio::test]
async fn serial_every_store_is_reached_through_the_proxy_and_a_proxy_down_is_named() -> Result<()> {
    let t = &TestCtx::new().await?;
    let mut proxy = ForwardProxy::start(&t.env).await?;
    let (api, ca) = api_server(&t.env)?;
    let api_at = host_port(&api)?;
    let ca_dir = tempfile::tempdir()?;
    let ca_file = ca_dir.path().join("ca.crt");
    std::fs::write(&ca_file, ca)?;
    let back = OperatorsBack::armed();
    let (_ns, backup, _) = real_backup(t, "proxy-src").await?;

    // The stores through the proxy, the API server directly (NO_PROXY).
    restart_operators(1, &settings(&proxy.url(), &api, &ca_file, true)).await?;
    for location in ["default", "gcs", "azure"] {
        bundle_to(t, &backup, location).await?;
    }
    let stores = [
        ("S3", host_port(&t.env.s3.endpoint)?),
        ("GCS", host_port(&t.env.gcs.endpoint)?),
        ("Azure", host_port(&t.env.azure.endpoint)?),
    ];
    for (store, at) in &stores {
        ensure!(
            relayed_to(&proxy, at),
            "the proxy relayed nothing to {store} ({at}): {:?}",
            proxy.requests()
        );
    }
    ensure!(
        !relayed_to(&proxy, &api_at.replace("127.0.0.1", "localhost"))
            && !relayed_to(&proxy, &api_at),
        "the API server was reached through the proxy although NO_PROXY names it"
    );

    // No NO_PROXY: the API server through the proxy as well (kube's proxy support).
    restart_operators(1, &settings(&proxy.url(), &api, &ca_file, false)).await?;
    bundle_to(t, &backup, "default").await?;
    ensure!(
        relayed_to(&proxy, &format!("CONNECT {api_at}")),
        "the API server ({api_at}) was not reached through the proxy: {:?}",
        proxy.requests()
    );

    // The proxy down: the bundle names the store and the proxy it could not get through.
    proxy.stop().await?;
    restart_operators(1, &settings(&proxy.url(), &api, &ca_file, true)).await?;
    let spec = serde_json::json!({"backup": backup});
    let name = apply_bundle(t, spec).await?;
    let api_bundles =
        kube::Api::<velero_debug_crd::DebugBundle>::namespaced(t.client.clone(), &t.env.namespace);
    let expected = format!("cannot be reached through the proxy {}", proxy.url());
    let said = eventually(
        "the bundle to name the proxy",
        Duration::from_secs(120),
        || async {
            let b = api_bundles.get(&name).await?;
            let text = condition_reason(&b);
            let phase = b.status.as_ref().and_then(|s| s.phase);
            ensure!(
                phase != Some(Phase::Completed),
                "Completed with the proxy down"
            );
            Ok(text.contains(&expected).then_some(text))
        },
    )
    .await;
    let authenticated = through_a_proxy_that_authenticates(t, &backup, &api_at).await;
    back.done().await?;
    let said = said?;
    ensure!(said.starts_with("StorageUnreachable"), "{said}");
    authenticated
}

/// A proxy requiring a user and password (tinyproxy's BasicAuth), named with them in
/// HTTPS_PROXY and HTTP_PROXY: the API server and the store are reached through it (issue 56:
/// kube's proxy lost them, and the proxy answered 407), and no operator log names the password.
async fn through_a_proxy_that_authenticates(t: &TestCtx, backup: &str, api_at: &str) -> Result<()> {
    const PASSWORD: &str = "pr0xy-s3cret";
    let proxy = ForwardProxy::start_with_auth(&t.env, "vdo", PASSWORD).await?;
    let settings = [("HTTPS_PROXY", proxy.url()), ("HTTP_PROXY", proxy.url())];
    restart_operators(1, &settings).await?;
    bundle_to(t, backup, "default").await?;
    ensure!(
        relayed_to(&proxy, &format!("CONNECT {api_at}")),
        "the API server ({api_at}) was not reached through the authenticating proxy: {:?}",
        proxy.requests()
    );
    ensure!(
        relayed_to(&proxy, &host_port(&t.env.s3.endpoint)?),
        "the store was not reached through the authenticating proxy: {:?}",
        proxy.requests()
    );
    let log = t.env.state_dir()?.join("logs/operator-0.log");
    let log = std::fs::read_to_string(&log).with_context(|| log.display().to_string())?;
    ensure!(
        !log.contains(PASSWORD),
        "the operator's log names the proxy's password"
    );
    Ok(())
}
