//! Static assets, embedded in the binary (`include_str!`): the dashboard's stylesheet and
//! script and the embeddable chat widget. Nothing is loaded from a CDN.

use crate::front::WebState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The dashboard stylesheet.
pub const STYLE_CSS: &str = include_str!("../assets/style.css");
/// The dashboard script (live row updates).
pub const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");
/// The embeddable chat widget.
pub const WIDGET_JS: &str = include_str!("../assets/widget.js");

/// Asset routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route(
            "/widget.js",
            get(|| async { asset("text/javascript; charset=utf-8", WIDGET_JS, true) }),
        )
        .route(
            "/assets/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", DASHBOARD_JS, false) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS, false) }),
        )
}

fn asset(content_type: &'static str, body: &'static str, cross_origin: bool) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if cross_origin {
        // The widget is embedded on other sites' pages.
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    res
}
