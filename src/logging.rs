//! Log output: env_logger (filtering by `RUST_LOG`, default `info`) with one of two formats,
//! `log.format`:
//! - `text`: `[2026-12-02T10:00:00.123Z INFO  target] message key=value …`
//! - `json`: one object per line with the stable keys `ts`, `level`, `target`, `msg`, then the
//!   record's fields (the `key = value` pairs of `log`'s structured logging) as keys of their
//!   own; a field never replaces one of the four.

use std::io::Write;

use log::kv::{Error as KvError, Key, Value as KvValue, VisitSource};
use serde_json::{Map, Value};

use realtime_server::config::LogFormat;

/// Starts logging in `format` (call once, before anything logs).
pub fn init(format: LogFormat) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    match format {
        LogFormat::Json => b.format(|buf, record| {
            let mut o = Map::new();
            o.insert(
                "ts".into(),
                Value::String(buf.timestamp_millis().to_string()),
            );
            o.insert("level".into(), Value::String(record.level().to_string()));
            o.insert("target".into(), Value::String(record.target().to_owned()));
            o.insert("msg".into(), Value::String(record.args().to_string()));
            let mut fields = JsonFields(&mut o);
            let _ = record.key_values().visit(&mut fields);
            writeln!(buf, "{}", Value::Object(o))
        }),
        LogFormat::Text => b.format(|buf, record| {
            write!(
                buf,
                "[{} {:<5} {}] {}",
                buf.timestamp_millis(),
                record.level(),
                record.target(),
                record.args()
            )?;
            let mut fields = TextFields(buf);
            let _ = record.key_values().visit(&mut fields);
            writeln!(buf)
        }),
    };
    b.init();
}

/// A field's value as JSON: numbers and booleans as such, anything else as its text.
fn json_value(v: &KvValue<'_>) -> Value {
    if let Some(n) = v.to_u64() {
        return Value::from(n);
    }
    if let Some(n) = v.to_i64() {
        return Value::from(n);
    }
    if let Some(b) = v.to_bool() {
        return Value::Bool(b);
    }
    if let Some(f) = v.to_f64() {
        return serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    }
    Value::String(v.to_string())
}

struct JsonFields<'a>(&'a mut Map<String, Value>);

impl<'kvs> VisitSource<'kvs> for JsonFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: KvValue<'kvs>) -> Result<(), KvError> {
        let k = key.as_str();
        if !matches!(k, "ts" | "level" | "target" | "msg") {
            self.0.insert(k.to_owned(), json_value(&value));
        }
        Ok(())
    }
}

struct TextFields<'a, W: Write>(&'a mut W);

impl<'kvs, W: Write> VisitSource<'kvs> for TextFields<'_, W> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: KvValue<'kvs>) -> Result<(), KvError> {
        write!(self.0, " {key}={value}").map_err(KvError::boxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_json_types() {
        let mut o = Map::new();
        let mut f = JsonFields(&mut o);
        f.visit_pair(Key::from_str("n"), KvValue::from(3u64))
            .unwrap();
        f.visit_pair(Key::from_str("ok"), KvValue::from(true))
            .unwrap();
        f.visit_pair(Key::from_str("ip"), KvValue::from("203.0.113.7"))
            .unwrap();
        f.visit_pair(Key::from_str("msg"), KvValue::from("spoof"))
            .unwrap();
        assert_eq!(
            Value::Object(o),
            serde_json::json!({"n": 3, "ok": true, "ip": "203.0.113.7"})
        );
    }
}
