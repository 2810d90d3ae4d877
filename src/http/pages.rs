//! The pages the binary serves (docs/http.md): the admin dashboard at `/admin/`, the demo chat
//! at `/demo/` (only in demo mode, with `POST /demo/token`), and their styles and scripts
//! under `/assets/`, the stock `socket.io-client` bundle among them. Everything is compiled
//! into the binary: the pages load nothing from another origin and work offline.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::Answer;
use crate::app::error::AppError;
use crate::auth::{Role, Verifier};

const ADMIN_HTML: &str = include_str!("pages/admin.html");
const DEMO_HTML: &str = include_str!("pages/demo.html");
const STYLE_CSS: &str = include_str!("pages/style.css");
const ADMIN_JS: &str = include_str!("pages/admin.js");
const DEMO_JS: &str = include_str!("pages/demo.js");
/// `socket.io-client` 4.8.4's `dist/socket.io.min.js`, unmodified (MIT; the test command
/// checks it against the npm package).
const SOCKET_IO_JS: &str = include_str!("pages/socket.io.min.js");

/// The users and room demo mode seeds, and who may get a demo token.
pub const DEMO_USERS: [(&str, &str, Role); 4] = [
    ("alice", "Alice", Role::User),
    ("bob", "Bob", Role::User),
    ("carol", "Carol", Role::User),
    ("admin", "Admin", Role::Admin),
];
/// The demo's rooms (id, name): public, with the demo users as members when the demo
/// creates them, so the room list shows both with unread counts.
pub const DEMO_ROOMS: [(&str, &str); 2] = [("lobby", "Lobby"), ("random", "Random")];
/// Lifetime of a demo token.
const DEMO_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// The page's own origin only: scripts, styles, and connections (WebSocket included).
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn page(body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

async fn asset_file(name: web::Path<String>) -> Answer {
    let js = "text/javascript; charset=utf-8";
    Ok(match name.as_str() {
        "style.css" => asset("text/css; charset=utf-8", STYLE_CSS),
        "admin.js" => asset(js, ADMIN_JS),
        "demo.js" => asset(js, DEMO_JS),
        "socket.io.min.js" => asset(js, SOCKET_IO_JS),
        _ => return Err(AppError::not_found("no such asset")),
    })
}

/// What demo mode needs: a verifier that can mint tokens.
#[derive(Clone)]
pub struct Demo {
    /// Mints the demo tokens.
    pub verifier: Arc<Verifier>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenBody {
    user_id: String,
}

/// `POST /demo/token {userId}` → `{token}` (1 h) for a seeded user; 403 for anyone else.
async fn demo_token(body: web::Bytes, demo: web::Data<Demo>) -> Answer {
    let b: TokenBody = serde_json::from_slice(&body)
        .map_err(|e| AppError::invalid(format!("expected {{userId}}: {e}")))?;
    let Some((id, _, role)) = DEMO_USERS.iter().find(|(id, _, _)| *id == b.user_id) else {
        return Err(AppError::forbidden(
            "demo tokens are only for the demo users",
        ));
    };
    let token = demo.verifier.mint(id, *role, None, DEMO_TTL).map_err(|e| {
        log::error!("cannot mint a demo token: {e}");
        AppError::Internal("cannot mint a demo token")
    })?;
    Ok(HttpResponse::Ok().json(json!({"success": true, "token": token})))
}

/// Registers the dashboard, the assets, and with `demo` the demo page and its tokens.
pub fn configure(demo: Option<Demo>) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + Sync {
    move |cfg: &mut web::ServiceConfig| {
        cfg.route("/admin/", web::get().to(|| async { page(ADMIN_HTML) }))
            .route(
                "/admin",
                web::get().to(|| async {
                    HttpResponse::PermanentRedirect()
                        .insert_header((header::LOCATION, "/admin/"))
                        .finish()
                }),
            )
            .route("/assets/{name}", web::get().to(asset_file));
        if let Some(demo) = &demo {
            cfg.service(
                web::scope("/demo")
                    .app_data(web::Data::new(demo.clone()))
                    .app_data(web::PayloadConfig::new(4096))
                    .route("/", web::get().to(|| async { page(DEMO_HTML) }))
                    .route("/token", web::post().to(demo_token)),
            );
        }
    }
}
