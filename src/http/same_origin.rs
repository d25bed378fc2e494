//! [`SameOriginLayer`]: refuses state-changing requests that a browser sends from another
//! site (CSRF), for the crate's router and for the host app's own routes alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use tower::{Layer, Service};

use crate::auth::Auth;
use crate::origin::{Origin, default_port, split_host_port};

/// A tower [`Layer`] that answers `403 {"message": "cross-site request refused"}` to a
/// state-changing request (any method but `GET`, `HEAD` and `OPTIONS`) that the browser
/// marks as cross-site (`Sec-Fetch-Site: cross-site`), or whose `Origin` is neither the
/// app's own origin nor one of the allowed origins. The app's own origin is the configured
/// [`public_origin`](crate::AuthConfig::public_origin) when there is one (scheme, host and
/// port compared), else the request's `Host` header. Clients that send neither header
/// (curl, scripts) are not browsers and carry no ambient cookies by accident: they pass.
///
/// The crate's router has it already; put it on your own routes that change state with a
/// session cookie:
///
/// ```
/// use axum::{Router, routing::post};
/// use tower_auth::{Auth, AuthConfig, MemoryStore};
///
/// # fn main() -> Result<(), tower_auth::ConfigError> {
/// # let mailer = tower_auth::Mailer::dev_outbox("target/outbox", "app@localhost", "http://localhost:3000")?;
/// let auth = Auth::new(MemoryStore::new(), AuthConfig::hardened_with(mailer))?;
/// let app: Router = Router::new()
///     .route("/orders", post(|| async { "ordered" }))
///     .layer(auth.same_origin_layer())
///     .layer(auth.layer());
/// # let _ = app; Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SameOriginLayer {
    origins: Arc<Origins>,
}

/// The origins a [`SameOriginLayer`] accepts writes from.
#[derive(Debug, Default)]
struct Origins {
    allowed: Vec<Origin>,
    public: Option<Origin>,
}

impl SameOriginLayer {
    /// A layer allowing writes from the request's own host and from `allowed_origins`
    /// (`scheme://host[:port]`; scheme, host and port compared, case-insensitively, with
    /// the scheme's default port when none is written). Entries that are not of that form
    /// never match.
    pub fn new(allowed_origins: impl IntoIterator<Item = String>) -> Self {
        Self {
            origins: Arc::new(Origins {
                allowed: allowed_origins
                    .into_iter()
                    .filter_map(|o| Origin::parse_configured(&o))
                    .collect(),
                public: None,
            }),
        }
    }

    /// Compares `Origin` with `origin` (`scheme://host[:port]`, the app's public address)
    /// instead of the request's `Host` header, which a proxy may rewrite and which says
    /// nothing of the scheme. An `origin` that is not of that form refuses every
    /// cross-origin-capable write (`Auth` refuses such a configuration at start).
    pub fn public_origin(self, origin: &str) -> Self {
        Self {
            origins: Arc::new(Origins {
                allowed: self.origins.allowed.clone(),
                public: Some(Origin::parse_configured(origin).unwrap_or_else(Origin::none)),
            }),
        }
    }
}

impl Auth {
    /// A [`SameOriginLayer`] with this service's
    /// [`allowed_origins`](crate::AuthConfig::allowed_origins) and
    /// [`public_origin`](crate::AuthConfig::public_origin).
    pub fn same_origin_layer(&self) -> SameOriginLayer {
        let layer = SameOriginLayer::new(self.config().allowed_origins.iter().cloned());
        match &self.config().public_origin {
            Some(origin) => layer.public_origin(origin),
            None => layer,
        }
    }
}

impl<S> Layer<S> for SameOriginLayer {
    type Service = SameOrigin<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SameOrigin {
            inner,
            origins: self.origins.clone(),
        }
    }
}

/// The service [`SameOriginLayer`] wraps around yours.
#[derive(Debug, Clone)]
pub struct SameOrigin<S> {
    inner: S,
    origins: Arc<Origins>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SameOrigin<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = SameOriginFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if is_cross_site_write(req.method(), req.headers(), &self.origins) {
            tracing::info!(target: "tower_auth::event", event = "cross_site_refused");
            SameOriginFuture::refused(refusal())
        } else {
            SameOriginFuture::passed_on(self.inner.call(req))
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`SameOrigin`]: the inner service's, or the refusal.
    pub struct SameOriginFuture<F, B> {
        #[pin]
        future: Option<F>,
        refusal: Option<Response<B>>,
    }
}

impl<F, B> SameOriginFuture<F, B> {
    fn passed_on(future: F) -> Self {
        Self {
            future: Some(future),
            refusal: None,
        }
    }

    fn refused(refusal: Response<B>) -> Self {
        Self {
            future: None,
            refusal: Some(refusal),
        }
    }
}

impl<F, B, E> Future for SameOriginFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(refusal) = this.refusal.take() {
            return Poll::Ready(Ok(refusal));
        }
        match this.future.as_pin_mut() {
            Some(future) => future.poll(cx),
            None => panic!("SameOriginFuture polled after completion"),
        }
    }
}

fn refusal<B: From<String>>() -> Response<B> {
    let mut response = Response::new(B::from(
        serde_json::json!({ "message": "cross-site request refused" }).to_string(),
    ));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A state-changing request that the browser marks as cross-site, or whose `Origin` is
/// neither the app's own origin nor an allowed one.
fn is_cross_site_write(method: &Method, headers: &HeaderMap, origins: &Origins) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|site| site.eq_ignore_ascii_case("cross-site")) {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    // `null` (a sandboxed or privacy-sensitive context) and malformed origins are foreign.
    let Some(origin) = origin.to_str().ok().and_then(Origin::parse) else {
        return true;
    };
    if origins.allowed.contains(&origin) {
        return false;
    }
    match &origins.public {
        Some(public) => origin != *public,
        None => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            let own = host.and_then(split_host_port);
            // Without a configured origin the request's scheme is unknown: host and port
            // decide, a `Host` without a port meaning the origin scheme's default one.
            !matches!(own, Some((h, p))
                if h.eq_ignore_ascii_case(&origin.host)
                    && p.or(default_port(&origin.scheme)) == origin.port)
        }
    }
}
