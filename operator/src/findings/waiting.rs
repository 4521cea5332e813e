//! Why a container cannot be made or started, read from the kubelet's own message beside its
//! waiting reason (CreateContainerError, CreateContainerConfigError, ImagePullBackOff,
//! ErrImagePull, RunContainerError, InvalidImageName...). The reason alone only says that it
//! failed; the message says what to change. Known messages get a cause of their own; any
//! other is quoted as the kubelet wrote it. Pure.

/// The waiting reasons that mean the kubelet could not make or start the container (as
/// opposed to waiting for an earlier one, or backing off after it ran).
pub(crate) const CANNOT_START: [&str; 7] = [
    "CreateContainerError",
    "CreateContainerConfigError",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "RunContainerError",
    "ErrImageNeverPull",
];

/// What the kubelet's message says is wrong, when it is a message we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cause {
    /// A hostPath mounted with mountPropagation HostToContainer or Bidirectional, on a folder
    /// of the node that is not a shared (or slave) mount.
    MountNotShared { path: Option<String> },
    /// The image cannot be pulled (or may not be).
    ImagePull { image: Option<String> },
    /// A Secret, ConfigMap or key the container's env or volumes name does not exist.
    MissingReference { what: String },
    /// Anything else: the message says it.
    Other,
}

/// The cause a waiting `reason` and its `message` name.
pub(crate) fn cause(reason: &str, message: &str) -> Cause {
    if message.contains("not a shared or slave mount") || message.contains("not a shared mount") {
        return Cause::MountNotShared {
            path: quoted_after(message, "path "),
        };
    }
    if matches!(
        reason,
        "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull"
    ) {
        return Cause::ImagePull {
            image: quoted_after(message, "image ")
                .or_else(|| quoted_after(message, "Back-off pulling image ")),
        };
    }
    if reason == "CreateContainerConfigError" {
        // `secret "db" not found`, `configmap "cfg" not found`, `couldn't find key pw in Secret ns/db`.
        for kind in ["secret", "configmap"] {
            if let Some(name) = quoted_after(message, &format!("{kind} ")) {
                return Cause::MissingReference {
                    what: format!("{kind} {name}"),
                };
            }
        }
        if let Some(at) = message.find("couldn't find key") {
            return Cause::MissingReference {
                what: message[at + "couldn't find ".len()..].trim().to_string(),
            };
        }
    }
    Cause::Other
}

/// As much of the end of `message` as fits in `max` bytes, cut at a `: ` of Go's error chain
/// (`a: b: c`, the innermost cause last), so a short quote keeps the cause, not the wrapping.
pub(crate) fn essence(message: &str, max: usize) -> String {
    let message = message.trim();
    if message.len() <= max {
        return message.to_string();
    }
    let mut from = message.len();
    while let Some(at) = message[..from].rfind(": ") {
        if message.len() - (at + 2) > max.saturating_sub(3) {
            break;
        }
        from = at;
    }
    let start = if from == message.len() {
        // No link of the chain fits: its end, cut.
        let mut start = message.len() - max.saturating_sub(3).min(message.len());
        while !message.is_char_boundary(start) {
            start += 1;
        }
        start
    } else {
        from + 2
    };
    format!("…{}", &message[start..])
}

/// The first `"quoted"` value right after `prefix` in `message`.
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let at = message.find(&format!("{prefix}\""))? + prefix.len() + 1;
    let rest = &message[at..];
    let end = rest.find('"')?;
    Some(rest[..end].to_string()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_that_is_not_shared_is_named_whatever_the_runtime_says_around_it() {
        // containerd 1.6 through the kubelet (the real node), and runc's own wording.
        for message in [
            "failed to generate container \"abc\" spec: failed to apply OCI options: path \"/var/lib/kubelet/pods\" is mounted on \"/\" but it is not a shared or slave mount",
            "Error response from daemon: path /host/pods is mounted on / but it is not a shared mount",
        ] {
            assert!(
                matches!(
                    cause("CreateContainerError", message),
                    Cause::MountNotShared { .. }
                ),
                "{message}"
            );
        }
        assert_eq!(
            cause(
                "CreateContainerError",
                "path \"/var/lib/kubelet/pods\" is mounted on \"/\" but it is not a shared or slave mount"
            ),
            Cause::MountNotShared {
                path: Some("/var/lib/kubelet/pods".into())
            }
        );
    }

    #[test]
    fn a_long_message_keeps_its_innermost_cause() {
        let containerd = "failed to generate container \"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0\" spec: failed to apply OCI options: path \"/var/lib/kubelet/pods\" is mounted on \"/\" but it is not a shared or slave mount";
        assert_eq!(
            essence(containerd, 130),
            "…failed to apply OCI options: path \"/var/lib/kubelet/pods\" is mounted on \"/\" but it is not a shared or slave mount"
        );
        assert_eq!(
            essence("secret \"db\" not found", 130),
            "secret \"db\" not found"
        );
        let long_tail = format!("a: {}", "x".repeat(300));
        assert!(essence(&long_tail, 50).len() <= 50 + "…".len());
    }

    #[test]
    fn an_image_or_a_missing_reference_is_named_from_the_message() {
        assert_eq!(
            cause(
                "ImagePullBackOff",
                "Back-off pulling image \"velero/velero:v1.99.0\": ErrImagePull: not found"
            ),
            Cause::ImagePull {
                image: Some("velero/velero:v1.99.0".into())
            }
        );
        assert_eq!(
            cause("ErrImagePull", "rpc error: code = NotFound"),
            Cause::ImagePull { image: None }
        );
        assert_eq!(
            cause(
                "CreateContainerConfigError",
                "secret \"cloud-credentials\" not found"
            ),
            Cause::MissingReference {
                what: "secret cloud-credentials".into()
            }
        );
        assert_eq!(
            cause(
                "CreateContainerConfigError",
                "couldn't find key cloud in Secret velero/cloud-credentials"
            ),
            Cause::MissingReference {
                what: "key cloud in Secret velero/cloud-credentials".into()
            }
        );
        assert_eq!(
            cause("RunContainerError", "exec: \"/velero\": permission denied"),
            Cause::Other
        );
    }
}
