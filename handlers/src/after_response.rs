//! Work run after a Lambda response is posted and before the runtime asks for the next event.
//!
//! The invoker (a contact flow waiting on its answer) has the response as soon as the runtime
//! posts it to the Runtime API. Lambda freezes the execution environment only when the runtime
//! calls `GET /runtime/invocation/next` again, so work done between the two neither delays the
//! caller nor is cut off by a freeze: it runs to completion inside the function's timeout, billed
//! as part of the invocation (the "custom runtime" option of AWS's *Running code after returning a
//! response from an AWS Lambda function*). A task merely spawned from the handler, by contrast,
//! would be frozen mid-flight and could be lost with the environment.
//!
//! [`AfterResponseLayer`] is the outermost layer of the [`lambda_runtime::Runtime`]: it awaits
//! the inner service (handler, response POST) and then its job, once per invocation.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaInvocation;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs `job()` after every invocation's response (or error report) is posted.
#[derive(Clone)]
pub struct AfterResponseLayer<J> {
    job: J,
}

impl<J> AfterResponseLayer<J> {
    pub fn new(job: J) -> Self {
        AfterResponseLayer { job }
    }
}

impl<S, J: Clone> Layer<S> for AfterResponseLayer<J> {
    type Service = AfterResponse<S, J>;

    fn layer(&self, inner: S) -> Self::Service {
        AfterResponse {
            inner,
            job: self.job.clone(),
        }
    }
}

/// The service of [`AfterResponseLayer`].
#[derive(Clone)]
pub struct AfterResponse<S, J> {
    inner: S,
    job: J,
}

impl<S, J, Fut> Service<LambdaInvocation> for AfterResponse<S, J>
where
    S: Service<LambdaInvocation, Response = (), Error = BoxError>,
    S::Future: Send + 'static,
    J: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    type Response = ();
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let posted = self.inner.call(invocation);
        let job = (self.job)();
        Box::pin(async move {
            let result = posted.await;
            job.await;
            result
        })
    }
}
