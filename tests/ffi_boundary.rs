//! Every export goes through the panic boundary, is declared in the header, and is
//! written literally in src/ffi.rs (cbindgen does not expand macros, so a
//! macro-made export would vanish from the header).
//!
//! An export is a function marked `#[no_mangle]`, `#[unsafe(no_mangle)]`,
//! `#[export_name = "..."]` or `#[unsafe(export_name = "...")]` (also inside
//! `cfg_attr`), or a `pub extern "C" fn` of src/ffi.rs. The sources are read with a
//! small Rust lexer, so comments, doc comments and string literals (which may hold
//! braces or these very words) never count, and a body is delimited by matching its
//! braces, however it ends. `scanner_catches_every_spelling` runs the same scanner
//! over synthetic sources.

use std::path::{Path, PathBuf};

#[test]
fn every_export_runs_inside_the_boundary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(root.join("src/ffi.rs")).expect("read src/ffi.rs");
    let header =
        std::fs::read_to_string(root.join("include/session.h")).expect("read include/session.h");
    let (exports, mut problems) = check_ffi_source("src/ffi.rs", &source, &header);

    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(!files.is_empty(), "no .rs file under src/");
    for path in files {
        let relative = path.strip_prefix(root).unwrap_or(&path);
        if relative == Path::new("src/ffi.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
        problems.extend(check_other_source(&relative.display().to_string(), &text));
    }

    assert!(
        problems.is_empty(),
        "{} problem(s) with the exports:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let names: Vec<&str> = exports.iter().map(|e| e.symbol.as_str()).collect();
    println!("{} exports: {}", names.len(), names.join(", "));
    assert!(
        exports.len() >= 13,
        "found only {} exports in src/ffi.rs: {}",
        exports.len(),
        names.join(", ")
    );
}

/// The scanner over synthetic sources: every spelling is found, and each broken
/// export is flagged.
#[test]
fn scanner_catches_every_spelling() {
    let source = r###"
//! A doc comment that mentions #[no_mangle] pub extern "C" fn in_a_comment() {}
/* a block comment /* nested */ #[no_mangle] pub extern "C" fn in_block_comment() {} */

fn boundary<T>(fail: T, body: impl FnOnce() -> Result<T, ()>) -> T { body().unwrap_or(fail) }
fn no_panic<T>(fail: T, body: impl FnOnce() -> T) -> T { let _ = fail; body() }

/// Plain spelling, with a body holding braces in strings, chars and comments.
#[no_mangle]
pub unsafe extern "C" fn plain(data: *const u8) -> i32 {
    let _ = data;
    boundary(0, || {
        let _ = "}}} \" {";
        let _ = '}';
        let _ = r#"}"# ;
        // }
        /* } */
        Ok(1)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn edition_2024() -> i32 { boundary(0, || Ok(2)) }

#[export_name = "renamed_symbol"]
pub extern "C" fn rust_side_name() -> i32 {
    static VERSION: &str = "}";
    let _ = VERSION;
    no_panic(0, || 3)
}

#[unsafe(export_name = "unsafe_renamed")]
#[allow(clippy::all)]
pub extern "C" fn other_rust_name() { boundary((), || Ok(())); }

#[cfg_attr(all(), no_mangle)]
pub extern "C" fn conditional() -> i32 {
    crate::ffi::boundary(0, || Ok(4))
}

pub extern "C" fn without_attribute() -> i32 { return boundary(0, || Ok(5)); }

/// LACKS THE BOUNDARY: the call only appears in a comment and a string.
#[no_mangle]
pub extern "C" fn missing_boundary() -> i32 {
    // boundary(0, || Ok(6))
    let _ = "no_panic(0, || 6)";
    6
}

/// The boundary exists but the value does not come out of it.
#[no_mangle]
pub extern "C" fn boundary_not_last() -> i32 {
    let v = boundary(0, || Ok(7));
    v
}

/// Not in the header.
#[no_mangle]
pub extern "C" fn not_in_header() -> i32 { boundary(0, || Ok(8)) }

/// Not exports: a private helper, a crate-visible callback, a function pointer type,
/// an extern block.
extern "C" fn private_callback() {}
pub(crate) extern "C" fn crate_callback() {}
pub type Callback = unsafe extern "C" fn(i32) -> i32;
pub struct Holder { pub cb: extern "C" fn() }
extern "C" { pub fn imported(x: i32) -> i32; }

/// An exported static is not a function: flagged.
#[no_mangle]
pub static EXPORTED_STATIC: i32 = 1;

/// A macro-made export: flagged (cbindgen would not see it).
macro_rules! make_export {
    ($name:ident) => {
        #[no_mangle]
        pub extern "C" fn $name() -> i32 { boundary(0, || Ok(9)) }
    };
}
"###;
    let header = r#"
/* edition_2024(void) is documented here, but a comment does not declare it:
   not_in_header(void); */
int plain(const char *data);
int edition_2024(void);
int renamed_symbol(void);
void unsafe_renamed(void);
int conditional(void);
int without_attribute(void);
int missing_boundary(void);
int boundary_not_last(void);
int missing_boundary_too(void);
"#;
    let (exports, problems) = check_ffi_source("src/ffi.rs", source, header);
    let found: Vec<(&str, &str)> = exports
        .iter()
        .map(|e| (e.symbol.as_str(), e.spelling.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("plain", "#[no_mangle]"),
            ("edition_2024", "#[unsafe(no_mangle)]"),
            ("renamed_symbol", "#[export_name = \"renamed_symbol\"]"),
            (
                "unsafe_renamed",
                "#[unsafe(export_name = \"unsafe_renamed\")]"
            ),
            ("conditional", "#[cfg_attr(all(), no_mangle)]"),
            ("without_attribute", "pub extern \"C\" fn"),
            ("missing_boundary", "#[no_mangle]"),
            ("boundary_not_last", "#[no_mangle]"),
            ("not_in_header", "#[no_mangle]"),
        ],
        "exports found: {found:?}\nproblems: {problems:#?}"
    );
    let flagged = |needle: &str| problems.iter().filter(|p| p.contains(needle)).count();
    assert_eq!(flagged("missing_boundary"), 1, "{problems:#?}");
    assert_eq!(flagged("boundary_not_last"), 1, "{problems:#?}");
    assert_eq!(flagged("not_in_header"), 1, "{problems:#?}");
    assert_eq!(flagged("EXPORTED_STATIC"), 1, "{problems:#?}");
    assert_eq!(flagged("macro"), 1, "{problems:#?}");
    assert_eq!(problems.len(), 5, "{problems:#?}");
    for good in [
        "plain",
        "edition_2024",
        "renamed_symbol",
        "unsafe_renamed",
        "conditional",
        "without_attribute",
    ] {
        assert_eq!(flagged(&format!(" {good} ")), 0, "{good}: {problems:#?}");
    }
    // The line of each problem is reported.
    let line = source
        .lines()
        .position(|l| l.contains("fn missing_boundary"))
        .unwrap()
        + 1;
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&format!("src/ffi.rs:{line}: "))),
        "{problems:#?}"
    );

    // Outside src/ffi.rs every export attribute is reported, attached to a function
    // or not; a plain pub extern "C" fn (a callback, say) is not an export there.
    let other = r#"
// #[no_mangle] in a comment does not count
pub extern "C" fn atfork_child() {}
#[unsafe(no_mangle)]
pub extern "C" fn sneaky() -> i32 { boundary(0, || Ok(1)) }
mod inner {
    #[export_name = "sneaky_static"]
    static S: i32 = 0;
}
fn outer() {
    #[no_mangle]
    extern "C" fn nested() {}
}
"#;
    let problems = check_other_source("src/store/new_dir/x.rs", other);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].starts_with("src/store/new_dir/x.rs:5: "),
        "{problems:#?}"
    );
    assert!(problems[0].contains("sneaky"), "{problems:#?}");
    assert!(problems[1].contains("sneaky_static"), "{problems:#?}");
    assert!(problems[2].contains("nested"), "{problems:#?}");

    // A body that ends on the same line as its last statement, and braces that
    // never close.
    let (exports, problems) = check_ffi_source(
        "src/ffi.rs",
        "#[no_mangle] pub extern \"C\" fn one_line() -> i32 { boundary(0, || { Ok(1) }) }",
        "int one_line(void);",
    );
    assert_eq!((exports.len(), problems.len()), (1, 0), "{problems:#?}");
    let (_, problems) = check_ffi_source(
        "src/ffi.rs",
        "#[no_mangle] pub extern \"C\" fn open() -> i32 { boundary(0, || { Ok(1) })",
        "int open(void);",
    );
    assert!(
        problems.len() == 1 && problems[0].contains("unbalanced"),
        "{problems:#?}"
    );

    // The walk reaches nested directories.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.iter().any(|f| f.ends_with("src/ffi.rs")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("src/lib.rs")), "{files:?}");
}

// ---------------------------------------------------------------------------
// The scanner.

/// One export found in the sources.
#[derive(Debug)]
struct Export {
    /// The symbol the linker sees: the `export_name` value, else the function name.
    symbol: String,
    /// How it is marked: the export attribute, or `pub extern "C" fn`.
    spelling: String,
    line: usize,
    /// Why its body does not run inside the boundary, if it does not.
    boundary_problem: Option<String>,
}

/// The exports of src/ffi.rs, and every problem: an export outside the boundary,
/// missing from the header, not a literal function, or with unbalanced braces.
fn check_ffi_source(file: &str, source: &str, header: &str) -> (Vec<Export>, Vec<String>) {
    let scan = scan(source, true);
    let mut problems = scan.problems(file);
    let declared = c_declarations(header);
    for export in &scan.exports {
        let at = format!("{file}:{}: export {} ", export.line, export.symbol);
        if let Some(why) = &export.boundary_problem {
            problems.push(format!(
                "{at}({}) does not run inside the panic boundary: {why}",
                export.spelling
            ));
        }
        if !declared.iter().any(|name| name == &export.symbol) {
            problems.push(format!(
                "{at}({}) is not declared in include/session.h (run \
                 `SESSION_WRITE_HEADER=1 cargo build`)",
                export.spelling
            ));
        }
    }
    (scan.exports, problems)
}

/// Every export attribute of a file other than src/ffi.rs, as a problem.
fn check_other_source(file: &str, source: &str) -> Vec<String> {
    let scan = scan(source, false);
    let mut problems: Vec<(usize, String)> = scan
        .exports
        .iter()
        .map(|e| {
            (
                e.line,
                format!(
                    "{file}:{}: export {} ({}) outside src/ffi.rs: exports belong in src/ffi.rs",
                    e.line, e.symbol, e.spelling
                ),
            )
        })
        .collect();
    problems.extend(
        scan.stray
            .iter()
            .map(|(line, what)| (*line, format!("{file}:{line}: {what} outside src/ffi.rs"))),
    );
    problems.extend(
        scan.unbalanced
            .iter()
            .map(|line| (*line, format!("{file}:{line}: unbalanced braces"))),
    );
    problems.sort();
    problems.into_iter().map(|(_, p)| p).collect()
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("read {}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names of the functions a C header declares: `name(` outside comments,
/// preceded by a space or `*`.
fn c_declarations(header: &str) -> Vec<String> {
    let mut code = String::with_capacity(header.len());
    let mut rest = header;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |end| &after[end + 2..]);
            code.push(' ');
        } else if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |end| &after[end..]);
        } else {
            let c = rest.chars().next().unwrap();
            code.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    let mut names = Vec::new();
    for (open, _) in code.match_indices('(') {
        let before = code[..open].trim_end();
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let name = &before[start..];
        let preceded_ok = before[..start].ends_with([' ', '*', '\t', '\n']);
        if !name.is_empty() && preceded_ok {
            names.push(name.to_string());
        }
    }
    names
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Ident,
    /// A string literal, any prefix (b, c, r, br, cr, r#...#).
    Str,
    Char,
    Lifetime,
    Punct,
}

#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    start: usize,
}

impl Token<'_> {
    fn is(&self, kind: Kind, text: &str) -> bool {
        self.kind == kind && self.text == text
    }
    fn punct(&self, text: &str) -> bool {
        self.is(Kind::Punct, text)
    }
    fn ident(&self, text: &str) -> bool {
        self.is(Kind::Ident, text)
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Rust source as tokens, without whitespace and comments. Only what the scanner
/// needs: identifiers (raw identifiers without `r#`), literals as single tokens,
/// lifetimes, and single-character punctuation.
fn tokenize(src: &str) -> Vec<Token<'_>> {
    let b = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if b[i..].starts_with(b"//") {
            i = src[i..].find('\n').map_or(b.len(), |n| i + n);
            continue;
        }
        if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            continue;
        }
        // Prefixed and raw strings, byte chars, raw identifiers.
        let prefix_len = ["br", "cr", "b", "c", "r"]
            .iter()
            .find(|p| src[i..].starts_with(**p))
            .map_or(0, |p| p.len());
        if prefix_len > 0 {
            let raw = src[i..i + prefix_len].ends_with('r');
            let mut j = i + prefix_len;
            let hashes = if raw {
                b[j..].iter().take_while(|&&h| h == b'#').count()
            } else {
                0
            };
            j += hashes;
            if raw && j < b.len() && b[j] == b'"' {
                let closing = format!("\"{}", "#".repeat(hashes));
                i = src[j + 1..]
                    .find(&closing)
                    .map_or(b.len(), |n| j + 1 + n + closing.len());
                tokens.push(Token {
                    kind: Kind::Str,
                    text: &src[start..i],
                    start,
                });
                continue;
            }
            if raw && prefix_len == 1 && hashes == 1 && j < b.len() && is_ident_byte(b[j]) {
                // r#ident
                let end = j + b[j..].iter().take_while(|&&x| is_ident_byte(x)).count();
                tokens.push(Token {
                    kind: Kind::Ident,
                    text: &src[j..end],
                    start,
                });
                i = end;
                continue;
            }
            if !raw && j < b.len() && (b[j] == b'"' || (b[j] == b'\'' && &src[i..j] == "b")) {
                i = quoted_end(b, j);
                let kind = if b[j] == b'"' { Kind::Str } else { Kind::Char };
                tokens.push(Token {
                    kind,
                    text: &src[start..i],
                    start,
                });
                continue;
            }
        }
        if c == b'"' {
            i = quoted_end(b, i);
            tokens.push(Token {
                kind: Kind::Str,
                text: &src[start..i],
                start,
            });
            continue;
        }
        if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}', '}') or a lifetime ('a, 'static).
            let next_len = src[i + 1..].chars().next().map_or(0, char::len_utf8);
            if i + 1 < b.len()
                && (b[i + 1] == b'\\'
                    || (i + 1 + next_len < b.len() && b[i + 1 + next_len] == b'\''))
            {
                i = quoted_end(b, i);
                tokens.push(Token {
                    kind: Kind::Char,
                    text: &src[start..i],
                    start,
                });
            } else {
                i += 1;
                i += b[i..].iter().take_while(|&&x| is_ident_byte(x)).count();
                tokens.push(Token {
                    kind: Kind::Lifetime,
                    text: &src[start..i],
                    start,
                });
            }
            continue;
        }
        if is_ident_byte(c) {
            i += b[i..].iter().take_while(|&&x| is_ident_byte(x)).count();
            tokens.push(Token {
                kind: Kind::Ident,
                text: &src[start..i],
                start,
            });
            continue;
        }
        i += 1;
        tokens.push(Token {
            kind: Kind::Punct,
            text: &src[start..i],
            start,
        });
    }
    tokens
}

/// The end (one past the closing quote) of the quoted literal opening at `open`.
fn quoted_end(b: &[u8], open: usize) -> usize {
    let quote = b[open];
    let mut j = open + 1;
    while j < b.len() {
        if b[j] == b'\\' {
            j += 2;
        } else if b[j] == quote {
            return j + 1;
        } else {
            j += 1;
        }
    }
    b.len()
}

/// The index of the token closing the bracket opened at `open`, if any.
fn matching(tokens: &[Token], open: usize) -> Option<usize> {
    let (o, c) = match tokens[open].text {
        "{" => ("{", "}"),
        "(" => ("(", ")"),
        "[" => ("[", "]"),
        _ => return None,
    };
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        if t.punct(o) {
            depth += 1;
        } else if t.punct(c) {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

/// What a scan of one file found.
#[derive(Default)]
struct Scan {
    exports: Vec<Export>,
    /// Export attributes on something that is not a literal function item
    /// (a static, a macro-made function, ...): (line, description).
    stray: Vec<(usize, String)>,
    /// Lines of functions whose braces never close.
    unbalanced: Vec<usize>,
}

impl Scan {
    fn problems(&self, file: &str) -> Vec<String> {
        let mut problems: Vec<String> = self
            .stray
            .iter()
            .map(|(line, what)| format!("{file}:{line}: {what}"))
            .collect();
        problems.extend(self.unbalanced.iter().map(|line| {
            format!("{file}:{line}: unbalanced braces: the function body never closes")
        }));
        problems
    }
}

/// An attribute: its text with whitespace normalised, and its tokens.
struct Attribute<'a> {
    text: String,
    tokens: &'a [Token<'a>],
}

impl Attribute<'_> {
    /// `no_mangle` or `export_name` anywhere inside: `#[no_mangle]`,
    /// `#[unsafe(no_mangle)]`, `#[export_name = ".."]`, `#[cfg_attr(.., no_mangle)]`.
    fn exports(&self) -> bool {
        self.tokens
            .iter()
            .any(|t| t.ident("no_mangle") || t.ident("export_name"))
    }

    /// The value of `export_name = "..."`, if any.
    fn export_name(&self) -> Option<String> {
        let at = self.tokens.iter().position(|t| t.ident("export_name"))?;
        let literal = self.tokens[at + 1..]
            .iter()
            .take(2)
            .find(|t| t.kind == Kind::Str)?;
        let text = literal.text.trim_start_matches(['b', 'c', 'r']);
        Some(text.trim_matches('#').trim_matches('"').to_string())
    }
}

/// Tokens as text, spaced between words and around `=` and after `,`.
fn attribute_text(tokens: &[Token]) -> String {
    let mut text = String::new();
    for (k, t) in tokens.iter().enumerate() {
        let prev = k.checked_sub(1).map(|p| tokens[p]);
        let spaced = t.punct("=")
            || prev.is_some_and(|p| p.punct("=") || p.punct(","))
            || prev.is_some_and(|p| p.kind != Kind::Punct && t.kind != Kind::Punct);
        if spaced {
            text.push(' ');
        }
        text.push_str(t.text);
    }
    text
}

const QUALIFIERS: &[&str] = &[
    "pub", "const", "async", "unsafe", "safe", "extern", "default",
];

/// Finds the exports of `source`: functions with an export attribute, and with
/// `pub_extern_is_export` also `pub extern "..." fn` without one.
fn scan(source: &str, pub_extern_is_export: bool) -> Scan {
    let tokens = tokenize(source);
    let line_of = |t: &Token| source[..t.start].matches('\n').count() + 1;
    let mut scan = Scan::default();
    let mut attrs: Vec<Attribute> = Vec::new();
    let mut quals: Vec<String> = Vec::new();
    let mut k = 0;
    while k < tokens.len() {
        let t = tokens[k];
        // An outer attribute: #[...].
        if t.punct("#") && tokens.get(k + 1).is_some_and(|n| n.punct("[")) {
            let Some(close) = matching(&tokens, k + 1) else {
                scan.unbalanced.push(line_of(&t));
                break;
            };
            let inner = &tokens[k + 2..close];
            attrs.push(Attribute {
                text: format!("#[{}]", attribute_text(inner)),
                tokens: inner,
            });
            k = close + 1;
            continue;
        }
        if t.kind == Kind::Ident && QUALIFIERS.contains(&t.text) {
            let mut qual = t.text.to_string();
            k += 1;
            if t.text == "pub" && tokens.get(k).is_some_and(|n| n.punct("(")) {
                let close = matching(&tokens, k).unwrap_or(tokens.len() - 1);
                qual = format!("pub({})", attribute_text(&tokens[k + 1..close]));
                k = close + 1;
            } else if t.text == "extern" && tokens.get(k).is_some_and(|n| n.kind == Kind::Str) {
                qual = format!("extern {}", tokens[k].text);
                k += 1;
            }
            quals.push(qual);
            continue;
        }
        let export_attr = attrs.iter().find(|a| a.exports());
        let name = tokens.get(k + 1).filter(|n| n.kind == Kind::Ident);
        if let (true, Some(name)) = (t.ident("fn"), name) {
            let is_extern = quals.iter().any(|q| q.starts_with("extern"));
            let is_pub = quals.iter().any(|q| q == "pub");
            let spelling = match export_attr {
                Some(attr) => Some(attr.text.clone()),
                None if pub_extern_is_export && is_pub && is_extern => {
                    let abi = quals.iter().find(|q| q.starts_with("extern")).unwrap();
                    Some(format!("pub {abi} fn"))
                }
                None => None,
            };
            if let Some(spelling) = spelling {
                let symbol = export_attr
                    .and_then(Attribute::export_name)
                    .unwrap_or_else(|| name.text.to_string());
                let boundary_problem = match body(&tokens, k + 2) {
                    Body::Block(open, close) => tail_problem(&tokens[open + 1..close]),
                    Body::None => Some("it has no body".to_string()),
                    Body::Unbalanced => {
                        scan.unbalanced.push(line_of(&t));
                        None
                    }
                };
                scan.exports.push(Export {
                    symbol,
                    spelling,
                    line: line_of(&t),
                    boundary_problem,
                });
            }
            // Go on inside the body: a nested item can be an export too.
            k += 2;
        } else {
            if let Some(attr) = export_attr {
                let what = if t.ident("static") {
                    let name = tokens[k + 1..]
                        .iter()
                        .find(|n| n.kind == Kind::Ident && n.text != "mut")
                        .map_or("?", |n| n.text);
                    format!(
                        "export attribute {} on static {name}: exports must be functions",
                        attr.text
                    )
                } else {
                    let next: Vec<&str> = tokens[k..].iter().take(4).map(|n| n.text).collect();
                    format!(
                        "export attribute {} not followed by a literal `fn name` but by `{}` \
                         (a macro-made export? cbindgen would not see it)",
                        attr.text,
                        next.join(" ")
                    )
                };
                scan.stray.push((line_of(&t), what));
            }
            k += 1;
        }
        attrs.clear();
        quals.clear();
    }
    scan
}

enum Body {
    /// Token indices of the opening and closing brace.
    Block(usize, usize),
    /// A declaration ending in `;`.
    None,
    Unbalanced,
}

/// The body of the function whose signature starts at token `from` (after the name).
fn body(tokens: &[Token], from: usize) -> Body {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(from) {
        match t.text {
            "(" | "[" if t.kind == Kind::Punct => depth += 1,
            ")" | "]" if t.kind == Kind::Punct => depth = depth.saturating_sub(1),
            ";" if t.kind == Kind::Punct && depth == 0 => return Body::None,
            "{" if t.kind == Kind::Punct && depth == 0 => {
                return match matching(tokens, k) {
                    Some(close) => Body::Block(k, close),
                    None => Body::Unbalanced,
                };
            }
            _ => {}
        }
    }
    Body::Unbalanced
}

/// Why a function body (the tokens between its braces) does not return the value
/// of a `boundary(..)` or `no_panic(..)` call, or None if it does. The call must be
/// the body's last statement or tail expression (`return` and an `unsafe { }`
/// around it are accepted); items and `let`s may come before it.
fn tail_problem(body: &[Token]) -> Option<String> {
    // Top-level statement ends.
    let mut depth = 0usize;
    let mut ends = Vec::new();
    for (k, t) in body.iter().enumerate() {
        if t.kind != Kind::Punct {
            continue;
        }
        match t.text {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth = depth.saturating_sub(1),
            ";" if depth == 0 => ends.push(k),
            _ => {}
        }
    }
    let mut tail = match ends.last() {
        Some(&last) if last + 1 < body.len() => &body[last + 1..],
        Some(&last) => {
            let start = ends.iter().rev().nth(1).map_or(0, |p| p + 1);
            &body[start..last]
        }
        None => body,
    };
    if tail.first().is_some_and(|t| t.ident("return")) {
        tail = &tail[1..];
    }
    if tail.len() >= 2
        && tail[0].ident("unsafe")
        && tail[1].punct("{")
        && matching(tail, 1) == Some(tail.len() - 1)
    {
        return tail_problem(&tail[2..tail.len() - 1]);
    }
    // An optional path: crate::ffi::boundary, self::no_panic, ::x::boundary.
    let mut k = 0;
    while k + 2 < tail.len() && tail[k].punct(":") && tail[k + 1].punct(":") {
        k += 2;
    }
    while k + 3 < tail.len()
        && tail[k].kind == Kind::Ident
        && tail[k + 1].punct(":")
        && tail[k + 2].punct(":")
    {
        k += 3;
    }
    let calls_boundary = tail
        .get(k)
        .is_some_and(|t| t.ident("boundary") || t.ident("no_panic"))
        && tail.get(k + 1).is_some_and(|t| t.punct("("));
    if calls_boundary {
        return None;
    }
    let shown = attribute_text(&tail[..tail.len().min(12)]);
    Some(format!(
        "its body must end with `boundary(fail, || ...)` or `no_panic(fail, || ...)`, \
         but its last statement is `{}`",
        if shown.is_empty() { "(empty)" } else { &shown }
    ))
}
