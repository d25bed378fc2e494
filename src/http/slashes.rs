//! [`MergeSlashesLayer`]: `//users` reaches `/users`, as on the seed's Werkzeug server.

use std::task::{Context, Poll};

use http::{Request, Uri};
use tower::{Layer, Service};

/// Merges runs of `/` in request paths before routing (`POST //users` → `POST /users`),
/// as Werkzeug does. Apply it outside the router: routing has already happened inside it.
///
/// ```
/// use tower::Layer as _;
/// let app: axum::Router = axum::Router::new().route("/users", axum::routing::post(|| async { "ok" }));
/// let app = tower_auth::seed::MergeSlashesLayer.layer(app);
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct MergeSlashesLayer;

impl<S> Layer<S> for MergeSlashesLayer {
    type Service = MergeSlashes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MergeSlashes { inner }
    }
}

/// The service [`MergeSlashesLayer`] builds.
#[derive(Debug, Clone)]
pub struct MergeSlashes<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for MergeSlashes<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if req.uri().path().contains("//")
            && let Some(uri) = merged(req.uri())
        {
            *req.uri_mut() = uri;
        }
        self.inner.call(req)
    }
}

fn merged(uri: &Uri) -> Option<Uri> {
    let mut path = String::with_capacity(uri.path().len());
    for c in uri.path().chars() {
        if !(c == '/' && path.ends_with('/')) {
            path.push(c);
        }
    }
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_runs_and_keeps_query() {
        let uri: Uri = "//users///x?a=//b".parse().unwrap();
        assert_eq!(merged(&uri).unwrap(), "/users/x?a=//b");
        let abs: Uri = "http://h:5000//profile".parse().unwrap();
        assert_eq!(merged(&abs).unwrap(), "http://h:5000/profile");
    }
}
