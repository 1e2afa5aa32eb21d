//! The session cookie: the `Set-Cookie` values a server sends (RFC 6265 section
//! 4.1) and the session id found in a request's `Cookie:` header (section 5.4),
//! from a store's optional `"cookie"` configuration object.

use crate::config::Section;
use crate::error::{Error, Result};
use crate::id::SessionId;
use serde_json::Value;
use std::time::Duration;

/// The keys of `sessions.cookie`.
pub const KEYS: &[&str] = &[
    "name",
    "path",
    "domain",
    "secure",
    "http_only",
    "same_site",
    "persistent",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

/// How the session cookie is written and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    pub name: String,
    pub path: String,
    pub domain: Option<String>,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: SameSite,
    /// `Max-Age` and `Expires` from the store's lifetime; `false`: a session
    /// cookie, which the browser drops when it closes.
    pub persistent: bool,
}

impl Default for CookieConfig {
    fn default() -> CookieConfig {
        CookieConfig {
            name: "session_id".to_string(),
            path: "/".to_string(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            persistent: true,
        }
    }
}

/// `sessions.cookie`, if present.
pub fn parse(section: &Section) -> Result<CookieConfig> {
    let mut cookie = CookieConfig::default();
    let map = match section.get("cookie") {
        None => return Ok(cookie),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(crate::config::wrong_type(
                &section.key_path("cookie"),
                "an object",
                other,
            ))
        }
    };
    let s = Section::new(map, &section.key_path("cookie"));
    if let Some(name) = s.string("name")? {
        if name.is_empty() || name.len() > 256 || !name.bytes().all(is_token_char) {
            return Err(Error::config(format!(
                "{} must be a cookie name: 1 to 256 letters, digits or !#$%&'*+-.^_`|~",
                s.key_path("name")
            )));
        }
        cookie.name = name.to_string();
    }
    if let Some(path) = s.string("path")? {
        if !path.starts_with('/') || !path.bytes().all(is_attribute_char) {
            return Err(Error::config(format!(
                "{} must start with / and hold no ';', space or control character",
                s.key_path("path")
            )));
        }
        cookie.path = path.to_string();
    }
    if let Some(domain) = s.string("domain")? {
        let host = domain.strip_prefix('.').unwrap_or(domain);
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(Error::config(format!(
                "{} must be a host name such as example.com",
                s.key_path("domain")
            )));
        }
        cookie.domain = Some(domain.to_string());
    }
    cookie.secure = s.bool("secure")?.unwrap_or(true);
    cookie.http_only = s.bool("http_only")?.unwrap_or(true);
    cookie.persistent = s.bool("persistent")?.unwrap_or(true);
    if let Some(same_site) = s.string("same_site")? {
        cookie.same_site = match same_site.to_ascii_lowercase().as_str() {
            "strict" => SameSite::Strict,
            "lax" => SameSite::Lax,
            "none" => SameSite::None,
            _ => {
                return Err(Error::config(format!(
                    "{} must be \"Strict\", \"Lax\" or \"None\", got {same_site:?}",
                    s.key_path("same_site")
                )))
            }
        };
    }
    s.finish("cookie")?;
    check_rules(&cookie, &s)?;
    Ok(cookie)
}

/// The browsers' rules for `SameSite=None` and the `__Secure-` and `__Host-` name
/// prefixes: a cookie that breaks them is silently dropped, so refuse it here.
fn check_rules(cookie: &CookieConfig, s: &Section) -> Result<()> {
    // Browsers match the prefixes without regard to case.
    let lower = cookie.name.to_ascii_lowercase();
    let host_prefix = lower.starts_with("__host-");
    let secure_needed = if cookie.same_site == SameSite::None {
        Some("same_site \"None\"")
    } else if lower.starts_with("__secure-") || host_prefix {
        Some("a name starting with __Secure- or __Host-")
    } else {
        None
    };
    if let (Some(why), false) = (secure_needed, cookie.secure) {
        return Err(Error::config(format!(
            "{}: {why} needs \"secure\": true (browsers drop such a cookie otherwise)",
            s.path()
        )));
    }
    if host_prefix && (cookie.path != "/" || cookie.domain.is_some()) {
        return Err(Error::config(format!(
            "{}: a name starting with __Host- needs \"path\": \"/\" and no \"domain\"",
            s.path()
        )));
    }
    Ok(())
}

/// RFC 6265 / RFC 7230 `token` characters (a cookie name).
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Characters allowed in an attribute value: printable ASCII but `;`.
fn is_attribute_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && b != b';'
}

impl CookieConfig {
    /// The `Set-Cookie` value that gives the browser session `id`, valid for
    /// `lifetime` from `now_secs` (seconds since 1970) when the cookie is persistent.
    pub fn set_header(&self, id: &SessionId, lifetime: Duration, now_secs: u64) -> String {
        let mut header = format!("{}={}", self.name, id.as_str());
        if self.persistent {
            let max_age = lifetime.as_secs();
            header.push_str(&format!(
                "; Max-Age={max_age}; Expires={}",
                http_date(now_secs.saturating_add(max_age))
            ));
        }
        self.attributes(&mut header);
        header
    }

    /// The `Set-Cookie` value that deletes the session cookie.
    pub fn clear_header(&self) -> String {
        let mut header = format!(
            "{}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            self.name
        );
        self.attributes(&mut header);
        header
    }

    fn attributes(&self, header: &mut String) {
        header.push_str("; Path=");
        header.push_str(&self.path);
        if let Some(domain) = &self.domain {
            header.push_str("; Domain=");
            header.push_str(domain);
        }
        if self.secure {
            header.push_str("; Secure");
        }
        if self.http_only {
            header.push_str("; HttpOnly");
        }
        header.push_str(match self.same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
    }

    /// The first well-formed session id in a request's `Cookie:` header value
    /// (a leading `Cookie:` is skipped). Pairs are split at `;`, white space around
    /// names and values is ignored, a value in double quotes is unquoted, and a
    /// cookie of our name whose value is not a well-formed id is passed over.
    pub fn find_id(&self, header: &[u8]) -> Result<SessionId> {
        let mut header = trim(header);
        if header.len() >= 7 && header[..7].eq_ignore_ascii_case(b"cookie:") {
            header = &header[7..];
        }
        let mut seen = false;
        for pair in header.split(|&b| b == b';') {
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if trim(&pair[..eq]) != self.name.as_bytes() {
                continue;
            }
            seen = true;
            let mut value = trim(&pair[eq + 1..]);
            if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
                value = &value[1..value.len() - 1];
            }
            if let Ok(id) = SessionId::parse(value) {
                return Ok(id);
            }
        }
        Err(Error::new(
            crate::SessionError::NotFound,
            if seen {
                format!(
                    "the Cookie header has no well-formed {:?} cookie (a session id is 64 lowercase hex characters)",
                    self.name
                )
            } else {
                format!("the Cookie header has no {:?} cookie", self.name)
            },
        ))
    }
}

/// `bytes` without leading and trailing white space (spaces and tabs, and the
/// CR LF of a header line passed whole).
fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] = bytes {
        bytes = rest;
    }
    bytes
}

/// An IMF-fixdate (RFC 7231 section 7.1.1.1): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<CookieConfig> {
        let value: Value = serde_json::from_str(json).unwrap();
        let section = Section::new(value.as_object().unwrap(), "sessions");
        parse(&section)
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn default_and_configured_headers() {
        let id = SessionId::parse(&[b'a'; 64]).unwrap();
        let default = CookieConfig::default();
        assert_eq!(
            default.set_header(&id, Duration::from_secs(3600), 0),
            format!("session_id={}; Max-Age=3600; Expires=Thu, 01 Jan 1970 01:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Lax", id.as_str())
        );
        assert_eq!(
            default.clear_header(),
            "session_id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
        let custom = config(
            r#"{"cookie": {"name": "sid", "path": "/app", "domain": "example.com", "secure": false,
                "http_only": false, "same_site": "strict", "persistent": false}}"#,
        )
        .unwrap();
        assert_eq!(
            custom.set_header(&id, Duration::from_secs(3600), 0),
            format!(
                "sid={}; Path=/app; Domain=example.com; SameSite=Strict",
                id.as_str()
            )
        );
    }

    #[test]
    fn bad_cookie_configs_are_refused() {
        for (json, says) in [
            (r#"{"cookie": {"name": "a b"}}"#, "cookie name"),
            (r#"{"cookie": {"name": ""}}"#, "cookie name"),
            (r#"{"cookie": {"path": "app"}}"#, "start with /"),
            (r#"{"cookie": {"path": "/a;b"}}"#, "start with /"),
            (r#"{"cookie": {"domain": "a b"}}"#, "host name"),
            (r#"{"cookie": {"domain": "a..b"}}"#, "host name"),
            (r#"{"cookie": {"domain": "-x.com"}}"#, "host name"),
            (
                r#"{"cookie": {"name": "__HOST-sid", "domain": "example.com"}}"#,
                "__Host-",
            ),
            (
                r#"{"cookie": {"name": "__secure-sid", "secure": false}}"#,
                "needs \"secure\"",
            ),
            (r#"{"cookie": {"same_site": "sometimes"}}"#, "\"Strict\""),
            (
                r#"{"cookie": {"same_site": "None", "secure": false}}"#,
                "needs \"secure\"",
            ),
            (
                r#"{"cookie": {"name": "__Host-sid", "path": "/x"}}"#,
                "__Host-",
            ),
            (
                r#"{"cookie": {"max_age": 3}}"#,
                "unknown key sessions.cookie.max_age",
            ),
            (r#"{"cookie": "yes"}"#, "must be an object"),
            (r#"{"cookie": {"secure": "yes"}}"#, "true or false"),
        ] {
            let err = config(json).unwrap_err();
            assert_eq!(err.code, crate::SessionError::Config, "{json}");
            assert!(err.message.contains(says), "{json}: {}", err.message);
        }
    }

    #[test]
    fn http_dates_match_a_day_by_day_calendar() {
        // An independent reference: walk the calendar one day at a time from
        // 1970-01-01 (a Thursday) into 2408, across every leap rule (1972, 2000,
        // 2100, 2400) and every March-based era boundary of the date arithmetic.
        const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month_len = |year: u64, month: usize| match month {
            1 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
            1 => 28,
            3 | 5 | 8 | 10 => 30,
            _ => 31,
        };
        let (mut year, mut month, mut day) = (1970u64, 0usize, 1u64);
        for days in 0..160_000u64 {
            // A different time of day each day, midnight and the last second included.
            let rem = match days % 3 {
                0 => 0,
                1 => 86_399,
                _ => days * 7_919 % 86_400,
            };
            let expected = format!(
                "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
                WEEKDAYS[((days + 4) % 7) as usize],
                MONTHS[month],
                rem / 3600,
                rem / 60 % 60,
                rem % 60
            );
            assert_eq!(http_date(days * 86_400 + rem), expected, "day {days}");
            day += 1;
            if day > month_len(year, month) {
                day = 1;
                month += 1;
                if month == 12 {
                    month = 0;
                    year += 1;
                }
            }
        }
        assert_eq!(year, 2408);
    }

    #[test]
    fn names_and_domains_may_be_as_long_as_the_limits_and_no_longer() {
        let name = "n".repeat(256);
        let json = format!(r#"{{"cookie": {{"name": "{name}"}}}}"#);
        assert_eq!(config(&json).unwrap().name, name);
        let json = format!(r#"{{"cookie": {{"name": "{name}x"}}}}"#);
        let err = config(&json).unwrap_err();
        assert!(err.message.contains("cookie name"), "{}", err.message);

        // 253 characters: three labels of 63, one of 61, three dots.
        let labels = ["a".repeat(63), "b".repeat(63), "c".repeat(63)].join(".");
        let domain = format!("{labels}.{}", "d".repeat(61));
        assert_eq!(domain.len(), 253);
        let json = format!(r#"{{"cookie": {{"domain": "{domain}"}}}}"#);
        assert_eq!(config(&json).unwrap().domain, Some(domain.clone()));
        let longer = format!("{labels}.{}", "d".repeat(62));
        let json = format!(r#"{{"cookie": {{"domain": "{longer}"}}}}"#);
        let err = config(&json).unwrap_err();
        assert!(err.message.contains("host name"), "{}", err.message);
        // A leading dot and inner hyphens are allowed; the dot does not count.
        let json = format!(r#"{{"cookie": {{"domain": ".{domain}"}}}}"#);
        assert_eq!(config(&json).unwrap().domain, Some(format!(".{domain}")));
        let ok = config(r#"{"cookie": {"domain": "my-site.example"}}"#).unwrap();
        assert_eq!(ok.domain.as_deref(), Some("my-site.example"));
    }

    #[test]
    fn same_site_values_are_read_without_regard_to_case() {
        for (value, expected) in [
            ("Strict", SameSite::Strict),
            ("STRICT", SameSite::Strict),
            ("Lax", SameSite::Lax),
            ("lax", SameSite::Lax),
            ("None", SameSite::None),
            ("nOnE", SameSite::None),
        ] {
            // Start from a non-default name so that a parse returning the defaults
            // is told apart from one that read the value.
            let json = format!(r#"{{"cookie": {{"name": "sid", "same_site": "{value}"}}}}"#);
            let cookie = config(&json).unwrap();
            assert_eq!((cookie.name.as_str(), cookie.same_site), ("sid", expected));
        }
    }

    #[test]
    fn a_value_is_unquoted_only_when_quoted_at_both_ends() {
        let a = "a".repeat(64);
        let c = CookieConfig::default();
        for header in [
            format!("session_id=x{a}\""),
            format!("session_id=\"{a}x"),
            format!("session_id={a}\""),
            format!("session_id=\"{a}"),
            "session_id=\"".to_string(),
            "session_id=\"\"".to_string(),
        ] {
            let err = c.find_id(header.as_bytes()).unwrap_err();
            assert_eq!(err.code, crate::SessionError::NotFound, "{header}");
            assert!(err.message.contains("no well-formed"), "{header}");
        }
        let found = c.find_id(format!("session_id=\"{a}\"").as_bytes());
        assert_eq!(found.unwrap().as_str(), a);
    }

    #[test]
    fn finds_the_first_well_formed_id() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let c = CookieConfig::default();
        let found = |h: &str| c.find_id(h.as_bytes()).map(|id| id.as_str().to_string());
        assert_eq!(found(&format!("session_id={a}")).unwrap(), a);
        assert_eq!(found(&format!("Cookie: x=1; session_id={a}")).unwrap(), a);
        assert_eq!(found(&format!("Cookie: session_id={a}\r\n")).unwrap(), a);
        assert_eq!(
            found(&format!(" lang=en ;\tsession_id = \"{a}\" ; z=2")).unwrap(),
            a
        );
        assert_eq!(
            found(&format!("session_id=bad; session_id={b}; session_id={a}")).unwrap(),
            b
        );
        assert_eq!(
            found(&format!("xsession_id={a}; session_idx={a}"))
                .unwrap_err()
                .code,
            crate::SessionError::NotFound
        );
        assert_eq!(
            found(&format!("session_id={}", a.to_uppercase()))
                .unwrap_err()
                .code,
            crate::SessionError::NotFound
        );
        assert_eq!(found("").unwrap_err().code, crate::SessionError::NotFound);
        assert!(found(&format!("session_id={a}x")).is_err());
        assert!(found(&format!("session_id=\"{a}")).is_err());
        let garbage: String = (0..8192)
            .map(|i| char::from(b"=;\" \tabc\x01"[i % 9]))
            .collect();
        assert!(found(&garbage).is_err());
        assert_eq!(found(&format!("{garbage}; session_id={a}")).unwrap(), a);
    }
}
