//! A bound on what the S3 SDK reads into memory: it reads every answer but GetObject's whole
//! before parsing it (a listing, an error), so a store, or whatever `s3Url` names, that sends
//! an answer without Content-Length and never ends it would fill the memory, and the garbage
//! collector would repeat that after each restart. An interceptor caps every such body; the
//! body of a successful GetObject stays a stream (the download caps it as it writes).

use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{Intercept, context::BeforeDeserializationInterceptorContextMut},
        orchestrator::Metadata,
        runtime_components::RuntimeComponents,
    },
};
use aws_smithy_types::{body::SdkBody, config_bag::ConfigBag};
use http_body_util::{BodyExt, Limited};

/// What one answer read whole may hold: a listing page of 1000 keys of 1 KiB is about 1.3 MiB.
pub(in crate::storage) const MAX_REPLY_BYTES: usize = 16 << 20;

#[derive(Debug)]
pub(in crate::storage) struct BoundedReplies {
    pub max: usize,
}

impl Intercept for BoundedReplies {
    fn name(&self) -> &'static str {
        "BoundedReplies"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        let download = cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name() == "GetObject")
            && response.status().is_success();
        if download {
            return Ok(());
        }
        let max = self.max;
        let body = response.take_body().map(move |body| {
            let limited = Limited::new(body, max).map_err(move |_| -> BoxError {
                format!("the store's answer is larger than {} MiB", max >> 20).into()
            });
            SdkBody::from_body_1_x(limited)
        });
        *response.body_mut() = body;
        Ok(())
    }
}
