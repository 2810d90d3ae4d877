//! Event names of the application, in one place (DESIGN section 5).

pub const AUTH_REFRESH: &str = "auth:refresh";
pub const ERROR: &str = "error";
