//! `/contract`: the live platform contract as `flywheel contract render`
//! writes it. Shown as escaped preformatted text: nothing from the
//! contract file ever reaches the page as HTML.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get};

use crate::AppState;
use crate::access::Identity;
use crate::pages::{Chrome, render};
use crate::routes::Route;

pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (route.method, route.path) {
        ("GET", "/contract") => get(contract),
        _ => return None,
    })
}

#[derive(Template)]
#[template(path = "contract.html")]
struct ContractPage {
    c: Chrome,
    markdown: Option<String>,
}

async fn contract(State(s): State<Arc<AppState>>, Extension(who): Extension<Identity>) -> Response {
    render(
        &ContractPage {
            c: Chrome::new(&s, "Contract", Some(&who)),
            markdown: s
                .platform
                .as_deref()
                .map(flywheel_contract::render_markdown),
        },
        StatusCode::OK,
    )
}
