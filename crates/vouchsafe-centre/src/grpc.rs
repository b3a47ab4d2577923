//! The tonic adapter of `vouchsafe.v1.Centre` and the one place that maps errors to gRPC statuses
//! ([`to_status`]). Generated types never leave this module.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vouchsafe_proto::v1;

use crate::error::CentreError;
use crate::intake::Intake;

pub(crate) use vouchsafe_proto::v1::centre_server::CentreServer;

/// Maps an error to its status. Refusals name the check; the Centre's own failures are logged here (without
/// content: the messages name files and checks) and reach the provider as a bare INTERNAL.
pub(crate) fn to_status(e: CentreError) -> Status {
    match e {
        CentreError::TooLarge { .. } => Status::resource_exhausted(e.to_string()),
        CentreError::Malformed(_) => Status::invalid_argument(e.to_string()),
        CentreError::UnknownProvider | CentreError::BadSignature => Status::unauthenticated(e.to_string()),
        CentreError::Conflict => Status::already_exists(e.to_string()),
        CentreError::Refused(_) => Status::failed_precondition(e.to_string()),
        CentreError::Config { .. }
        | CentreError::Io { .. }
        | CentreError::Evidence { .. }
        | CentreError::Database(_)
        | CentreError::Internal(_) => {
            tracing::error!(error = %e, "delivery failed");
            Status::internal("internal error")
        }
    }
}

/// The `vouchsafe.v1.Centre` implementation.
pub(crate) struct CentreService {
    pub(crate) intake: Arc<Intake>,
}

#[tonic::async_trait]
impl v1::centre_server::Centre for CentreService {
    async fn deliver(&self, request: Request<v1::DeliverRequest>) -> Result<Response<v1::DeliverResponse>, Status> {
        let message = request.into_inner().message;
        let intake = Arc::clone(&self.intake);
        let now = crate::unix_now();
        let receipt = tokio::task::spawn_blocking(move || intake.deliver(&message, now))
            .await
            .map_err(|_| to_status(CentreError::Internal("the delivery task panicked")))?
            .map_err(to_status)?;
        Ok(Response::new(v1::DeliverResponse { receipt }))
    }
}
