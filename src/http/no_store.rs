//! [`NoStoreLayer`]: `Cache-Control: no-store` on every response, so no cache keeps a page
//! that carries a session, a token or account data.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, header};
use tower::{Layer, Service};

/// A tower [`Layer`] that sets `Cache-Control: no-store` on every response of the
/// services it wraps (replacing any other `Cache-Control`). The crate's router has it;
/// put it on your own routes that show account data:
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_auth::{CurrentUser, NoStoreLayer};
///
/// let app: Router = Router::new()
///     .route("/account", get(|CurrentUser(user): CurrentUser| async move { user.email }))
///     .layer(NoStoreLayer);
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct NoStoreLayer;

impl<S> Layer<S> for NoStoreLayer {
    type Service = NoStore<S>;

    fn layer(&self, inner: S) -> Self::Service {
        NoStore { inner }
    }
}

/// The service [`NoStoreLayer`] wraps around yours.
#[derive(Debug, Clone)]
pub struct NoStore<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for NoStore<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = NoStoreFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        NoStoreFuture {
            future: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`NoStore`].
    pub struct NoStoreFuture<F> {
        #[pin]
        future: F,
    }
}

impl<F, B, E> Future for NoStoreFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().future.poll(cx).map_ok(|mut response| {
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        })
    }
}
