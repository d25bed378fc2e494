//! The HTTP face of the service: the layer that gives handlers the current user and its
//! extractors, the mountable router, the login-redirect guard, the same-origin and
//! no-store layers, the cookies a request brings, errors as responses (the one place
//! statuses are decided, the seed's Werkzeug pages included), the client's address behind
//! proxies, the serving loop that bounds connections, and the pages mailed links open.

pub(crate) mod cookie_headers;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod forwarded;
pub(crate) mod guard;
pub(crate) mod layer;
mod link_pages;
pub(crate) mod no_store;

pub(crate) mod routes;
pub(crate) mod same_origin;
#[cfg(feature = "server")]
pub mod serve;

pub(crate) mod slashes;
