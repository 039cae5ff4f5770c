//! The search page people use: `/` (with `?q=` for linkable searches) and `/chapters/{id}`, plain
//! HTML/CSS/JS embedded in the binary, no external requests. The page calls the JSON API.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

use super::AppState;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/chapters/{id}", get(page))
        .route(
            "/assets/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    APP_JS,
                )
            }),
        )
        .route(
            "/assets/app.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS) }),
        )
        .with_state(state)
}

async fn page(State(state): State<AppState>) -> impl IntoResponse {
    let weak = crate::search::weak_match_score(&state.model_id).to_string();
    Html(INDEX_HTML.replace("{{WEAK_MATCH_SCORE}}", &weak))
}
