//! The KDA script as text: split into statements, and the KDA forms DataFusion's parser
//! cannot read rewritten into forms it can (`SELECT STREAM`, `STEP(t BY INTERVAL ...)`,
//! `TABLE(TOP_K_ITEMS_TUMBLING(CURSOR(...), ...))`, `TABLE(TUMBLE(TABLE s, ...))`). The
//! rewrites edit the original text by token spans, so strings and comments stay as written.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use super::KdaError;

/// Where bucketed windows start: the epoch, as KDA's STEP and FLOOR count from it.
pub const ORIGIN: &str = "TIMESTAMP '1970-01-01T00:00:00'";

/// The column a KDA table function's rows carry their window's end in.
pub const WINDOW_END: &str = "__window_end";

/// A token of a statement and its byte range in the statement's text.
#[derive(Debug, Clone)]
pub struct Tok {
    pub token: Token,
    pub start: usize,
    pub end: usize,
}

impl Tok {
    /// Whether this is the (unquoted) keyword or word `word`, any case.
    pub fn is(&self, word: &str) -> bool {
        matches!(&self.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
    }

    pub fn is_keyword(&self, keyword: Keyword) -> bool {
        matches!(&self.token, Token::Word(w) if w.quote_style.is_none() && w.keyword == keyword)
    }
}

/// `text`'s tokens without whitespace and comments, with byte ranges.
///
/// # Errors
/// The text does not tokenize (an unclosed string or quoted name).
pub fn tokens(text: &str, at: Location) -> Result<Vec<Tok>, KdaError> {
    let spans = Tokenizer::new(&GenericDialect {}, text)
        .tokenize_with_location()
        .map_err(|e| KdaError::new(shift(at, e.location), e.message.clone()))?;
    let lines = line_starts(text);
    let offset = |l: Location| -> usize {
        let line_start = lines
            .get(usize::try_from(l.line).unwrap_or(0).saturating_sub(1))
            .copied()
            .unwrap_or(text.len());
        let column = usize::try_from(l.column).unwrap_or(1).saturating_sub(1);
        text[line_start..]
            .char_indices()
            .nth(column)
            .map_or(text.len(), |(i, _)| line_start + i)
    };
    Ok(spans
        .into_iter()
        .filter(|TokenWithSpan { token, .. }| !matches!(token, Token::Whitespace(_)))
        .map(|t| Tok {
            start: offset(t.span.start),
            end: offset(t.span.end),
            token: t.token,
        })
        .collect())
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// `inner` (a location within a text starting at `at`) as a location in the whole script.
pub fn shift(at: Location, inner: Location) -> Location {
    if inner.line <= 1 {
        Location::new(at.line, at.column + inner.column.saturating_sub(1))
    } else {
        Location::new(at.line + inner.line - 1, inner.column)
    }
}

/// The location of byte `offset` of `text`, which starts at `at` in the script.
pub fn location_of(text: &str, offset: usize, at: Location) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u64;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    shift(at, Location::new(line + 1, column))
}

/// One statement of the script and where it starts.
pub struct Statement<'a> {
    pub text: &'a str,
    pub at: Location,
}

/// The script's statements, split at `;` outside strings, names and comments; empty
/// statements (only whitespace and comments) are left out.
///
/// # Errors
/// The script does not tokenize.
pub fn statements(script: &str) -> Result<Vec<Statement<'_>>, KdaError> {
    let start = Location::new(1, 1);
    let toks = tokens(script, start)?;
    let mut statements = Vec::new();
    let mut has_tokens = false;
    let mut first = 0;
    for tok in toks.iter().chain(std::iter::once(&Tok {
        token: Token::SemiColon,
        start: script.len(),
        end: script.len(),
    })) {
        if tok.token == Token::SemiColon {
            if has_tokens {
                statements.push(Statement {
                    text: &script[first..tok.start],
                    at: location_of(script, first, start),
                });
            }
            has_tokens = false;
            continue;
        }
        if !has_tokens {
            first = tok.start;
            has_tokens = true;
        }
    }
    Ok(statements)
}

/// What the rewrites learned about the query's windows.
#[derive(Debug, Default, Clone)]
pub struct Rewritten {
    pub sql: String,
    /// A `TOP_K_ITEMS_TUMBLING`/`COUNT_DISTINCT_ITEMS_TUMBLING` made the query tumble by
    /// this many ms; its rows carry [`WINDOW_END`].
    pub function_window: Option<u64>,
    /// A `TUMBLE(...)` table function gave rows `window_start`/`window_end` of this size.
    pub tumble: Option<u64>,
    /// A `HOP(...)` table function gave rows a `window_start`/`window_end` per window of
    /// (slide, size) ms holding them.
    pub hop: Option<(u64, u64)>,
}

/// The rewrites, applied until none applies: `SELECT STREAM` → `SELECT`, then `STEP`,
/// then the table functions. `resolve` gives a column's canonical name (for the quoted
/// column names the KDA functions take).
///
/// # Errors
/// A KDA form with missing or wrong parts.
pub fn rewrite(
    query: &str,
    at: Location,
    resolve: &dyn Fn(&str) -> String,
) -> Result<Rewritten, KdaError> {
    let mut out = Rewritten {
        sql: query.to_string(),
        ..Rewritten::default()
    };
    out.sql = drop_stream_keyword(&out.sql, at)?;
    loop {
        let sql = out.sql.clone();
        let toks = tokens(&sql, at)?;
        let err = |i: usize, message: String| {
            let offset = toks.get(i).map_or(sql.len(), |t| t.start);
            KdaError::new(location_of(&sql, offset, at), message)
        };
        let Some(edit) = next_edit(&sql, &toks, resolve, &mut out, &err)? else {
            return Ok(out);
        };
        out.sql.replace_range(edit.0..edit.1, &edit.2);
    }
}

fn drop_stream_keyword(sql: &str, at: Location) -> Result<String, KdaError> {
    let toks = tokens(sql, at)?;
    let mut out = sql.to_string();
    for pair in toks.windows(2).rev() {
        if pair[0].is_keyword(Keyword::SELECT) && pair[1].is("STREAM") {
            out.replace_range(pair[1].start..pair[1].end, "");
        }
    }
    Ok(out)
}

type Edit = (usize, usize, String);

/// The first rewrite that applies to `toks`, as a byte range and its replacement.
fn next_edit(
    sql: &str,
    toks: &[Tok],
    resolve: &dyn Fn(&str) -> String,
    out: &mut Rewritten,
    err: &dyn Fn(usize, String) -> KdaError,
) -> Result<Option<Edit>, KdaError> {
    for (i, tok) in toks.iter().enumerate() {
        let called = toks.get(i + 1).is_some_and(|t| t.token == Token::LParen);
        if tok.is("STEP") && called {
            return step(sql, toks, i, err).map(Some);
        }
        let table_call = tok.is_keyword(Keyword::TABLE)
            && called
            && toks.get(i + 3).is_some_and(|t| t.token == Token::LParen);
        if !table_call {
            continue;
        }
        let function = &toks[i + 2];
        if function.is("TOP_K_ITEMS_TUMBLING") || function.is("COUNT_DISTINCT_ITEMS_TUMBLING") {
            return items_function(sql, toks, i, resolve, out, err).map(Some);
        }
        if function.is("TUMBLE") {
            return tumble(sql, toks, i, out, err).map(Some);
        }
        if function.is("HOP") {
            return hop(sql, toks, i, out, err).map(Some);
        }
    }
    Ok(None)
}

/// The index of the `)` closing the `(` at `open`.
fn closing(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, tok) in toks.iter().enumerate().skip(open) {
        match tok.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The top-level comma-separated arguments between `open` and `close`, as token ranges.
fn arguments(toks: &[Tok], open: usize, close: usize) -> Vec<(usize, usize)> {
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut first = open + 1;
    for (i, tok) in toks.iter().enumerate().take(close).skip(open + 1) {
        match tok.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                args.push((first, i));
                first = i + 1;
            }
            _ => {}
        }
    }
    if first < close {
        args.push((first, close));
    }
    args
}

fn span<'a>(sql: &'a str, toks: &[Tok], (from, to): (usize, usize)) -> &'a str {
    if from >= to {
        return "";
    }
    &sql[toks[from].start..toks[to - 1].end]
}

/// `STEP(t BY INTERVAL 'n' UNIT)` → `date_bin(INTERVAL 'n' UNIT, t, <epoch>)`.
fn step(
    sql: &str,
    toks: &[Tok],
    at: usize,
    err: &dyn Fn(usize, String) -> KdaError,
) -> Result<Edit, KdaError> {
    let close = closing(toks, at + 1).ok_or_else(|| err(at, "STEP( is not closed".into()))?;
    let mut depth = 0usize;
    let mut by = None;
    for (i, tok) in toks.iter().enumerate().take(close).skip(at + 2) {
        match tok.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && tok.is_keyword(Keyword::BY) => by = Some(i),
            _ => {}
        }
    }
    let by = by.ok_or_else(|| err(at, "STEP needs (<time> BY INTERVAL '<n>' <unit>)".into()))?;
    let time = span(sql, toks, (at + 2, by));
    let interval = span(sql, toks, (by + 1, close));
    if time.is_empty() || !toks[by + 1].is_keyword(Keyword::INTERVAL) {
        return Err(err(
            at,
            "STEP needs (<time> BY INTERVAL '<n>' <unit>)".into(),
        ));
    }
    Ok((
        toks[at].start,
        toks[close].end,
        format!("date_bin({interval}, {time}, {ORIGIN})"),
    ))
}

fn number(tok: &Tok) -> Option<u64> {
    match &tok.token {
        Token::Number(n, _) => n.parse().ok(),
        _ => None,
    }
}

/// `TABLE(TOP_K_ITEMS_TUMBLING(CURSOR(q), 'col', k, seconds))` and
/// `TABLE(COUNT_DISTINCT_ITEMS_TUMBLING(CURSOR(q), 'col', seconds))` → a derived table
/// of each window's rows, carrying [`WINDOW_END`].
fn items_function(
    sql: &str,
    toks: &[Tok],
    at: usize,
    resolve: &dyn Fn(&str) -> String,
    out: &mut Rewritten,
    err: &dyn Fn(usize, String) -> KdaError,
) -> Result<Edit, KdaError> {
    let name = &toks[at + 2];
    let top_k = name.is("TOP_K_ITEMS_TUMBLING");
    let outer = closing(toks, at + 1).ok_or_else(|| err(at, "TABLE( is not closed".into()))?;
    let inner = closing(toks, at + 3).ok_or_else(|| err(at + 2, "( is not closed".into()))?;
    let args = arguments(toks, at + 3, inner);
    let usage = if top_k {
        "TOP_K_ITEMS_TUMBLING(CURSOR(SELECT STREAM * FROM \"S\"), 'column', K, window seconds)"
    } else {
        "COUNT_DISTINCT_ITEMS_TUMBLING(CURSOR(SELECT STREAM * FROM \"S\"), 'column', window seconds)"
    };
    let wrong = || err(at + 2, format!("expected {usage}"));
    if args.len() != if top_k { 4 } else { 3 } {
        return Err(wrong());
    }
    let (cursor_from, cursor_to) = args[0];
    if !(toks[cursor_from].is("CURSOR")
        && toks
            .get(cursor_from + 1)
            .is_some_and(|t| t.token == Token::LParen)
        && closing(toks, cursor_from + 1) == Some(cursor_to - 1))
    {
        return Err(wrong());
    }
    let cursor = span(sql, toks, (cursor_from + 2, cursor_to - 1));
    let column = match (args[1].1 - args[1].0, &toks[args[1].0].token) {
        (1, Token::SingleQuotedString(column)) => resolve(column),
        _ => return Err(wrong()),
    };
    let seconds_arg = args[args.len() - 1];
    let seconds = (seconds_arg.1 - seconds_arg.0 == 1)
        .then(|| number(&toks[seconds_arg.0]))
        .flatten()
        .filter(|s| (1..=3600).contains(s))
        .ok_or_else(|| err(seconds_arg.0, "the window is 1 to 3600 seconds".into()))?;
    let bucket = format!("date_bin(INTERVAL '{seconds}' SECOND, \"ROWTIME\", {ORIGIN})");
    let end = format!("{bucket} + INTERVAL '{seconds}' SECOND AS \"{WINDOW_END}\"");
    let column = quoted(&column);
    let derived = if top_k {
        let k = (args[2].1 - args[2].0 == 1)
            .then(|| number(&toks[args[2].0]))
            .flatten()
            .filter(|k| (1..=100_000).contains(k))
            .ok_or_else(|| err(args[2].0, "K is 1 to 100000".into()))?;
        format!(
            "(SELECT {column}, \"ITEM_COUNT\", \"{WINDOW_END}\" FROM (SELECT {column}, \
             COUNT(*) AS \"ITEM_COUNT\", {end}, ROW_NUMBER() OVER (PARTITION BY {bucket} \
             ORDER BY COUNT(*) DESC, {column}) AS \"__rank\" FROM ({cursor}) AS \"__cursor\" \
             GROUP BY {column}, {bucket}) AS \"__counted\" WHERE \"__rank\" <= {k})"
        )
    } else {
        format!(
            "(SELECT CAST(approx_distinct({column}) AS BIGINT) AS \"NUMBER_OF_DISTINCT_ITEMS\", \
             {end} FROM ({cursor}) AS \"__cursor\" GROUP BY {bucket})"
        )
    };
    out.function_window = Some(seconds * 1000);
    Ok((toks[at].start, toks[outer].end, derived))
}

/// `TABLE(TUMBLE(TABLE s, DESCRIPTOR(t), INTERVAL ...))` (Flink's form) → `s`'s rows
/// with `window_start` and `window_end`.
fn tumble(
    sql: &str,
    toks: &[Tok],
    at: usize,
    out: &mut Rewritten,
    err: &dyn Fn(usize, String) -> KdaError,
) -> Result<Edit, KdaError> {
    let usage = "expected TUMBLE(TABLE \"S\", DESCRIPTOR(ROWTIME), INTERVAL '1' MINUTE)";
    let call = flink_window(sql, toks, at, 1, err, usage)?;
    let interval = call.intervals[0];
    let size =
        super::window::interval_text_ms(interval).ok_or_else(|| err(at + 2, usage.into()))?;
    let (table, time) = (call.table, call.time);
    let bucket = format!("date_bin({interval}, {time}, {ORIGIN})");
    out.tumble = Some(size);
    Ok((
        toks[at].start,
        call.end,
        format!(
            "(SELECT *, {bucket} AS \"window_start\", {bucket} + {interval} AS \"window_end\" \
             FROM {table})"
        ),
    ))
}

/// A Flink window table function's arguments: `TABLE s, DESCRIPTOR(t)` and `intervals`
/// more, as text.
struct FlinkWindow<'a> {
    table: &'a str,
    time: &'a str,
    intervals: Vec<&'a str>,
    /// Where the `TABLE(...)` around the call ends.
    end: usize,
}

/// Reads `TABLE(F(TABLE s, DESCRIPTOR(t), <intervals>))` at `at`, or fails with `usage`.
fn flink_window<'a>(
    sql: &'a str,
    toks: &[Tok],
    at: usize,
    intervals: usize,
    err: &dyn Fn(usize, String) -> KdaError,
    usage: &str,
) -> Result<FlinkWindow<'a>, KdaError> {
    let outer = closing(toks, at + 1).ok_or_else(|| err(at, "TABLE( is not closed".into()))?;
    let inner = closing(toks, at + 3).ok_or_else(|| err(at + 2, "( is not closed".into()))?;
    let args = arguments(toks, at + 3, inner);
    let wrong = || err(at + 2, usage.into());
    if args.len() != 2 + intervals {
        return Err(wrong());
    }
    let table = match args[0] {
        (from, to) if toks[from].is_keyword(Keyword::TABLE) => span(sql, toks, (from + 1, to)),
        (from, to) => span(sql, toks, (from, to)),
    };
    let (d_from, d_to) = args[1];
    if !(toks[d_from].is("DESCRIPTOR") && d_to - d_from == 4) {
        return Err(wrong());
    }
    Ok(FlinkWindow {
        table,
        time: span(sql, toks, (d_from + 2, d_to - 1)),
        intervals: args[2..].iter().map(|&a| span(sql, toks, a)).collect(),
        end: toks[outer].end,
    })
}

/// The largest number of windows a `HOP` row may be in (size / slide).
const MAX_HOPS: u64 = 100;

/// The column a `HOP` row's copies differ in: how far back from its slide its window starts.
pub const HOP_BACK: &str = "__back";

/// `TABLE(HOP(TABLE s, DESCRIPTOR(t), slide, size))` (Flink's form) → `s`'s rows, once per
/// window holding them, with that window's `window_start` and `window_end`.
fn hop(
    sql: &str,
    toks: &[Tok],
    at: usize,
    out: &mut Rewritten,
    err: &dyn Fn(usize, String) -> KdaError,
) -> Result<Edit, KdaError> {
    let usage = "expected HOP(TABLE \"S\", DESCRIPTOR(ROWTIME), INTERVAL '10' SECOND, \
                 INTERVAL '1' MINUTE) (slide, then size)";
    let call = flink_window(sql, toks, at, 2, err, usage)?;
    let (slide_text, size_text) = (call.intervals[0], call.intervals[1]);
    let (Some(slide), Some(size)) = (
        super::window::interval_text_ms(slide_text),
        super::window::interval_text_ms(size_text),
    ) else {
        return Err(err(at + 2, usage.into()));
    };
    if size % slide != 0 || size / slide > MAX_HOPS {
        return Err(err(
            at + 2,
            format!(
                "{usage}: the size must be a multiple of the slide, at most {MAX_HOPS} times it"
            ),
        ));
    }
    let backs: Vec<String> = (0..size / slide)
        .map(|k| format!("(INTERVAL '{} milliseconds')", k * slide))
        .collect();
    let (table, time) = (call.table, call.time);
    let start = format!("date_bin({slide_text}, {time}, {ORIGIN}) - \"{HOP_BACK}\"");
    out.hop = Some((slide, size));
    Ok((
        toks[at].start,
        call.end,
        format!(
            "(SELECT *, {start} AS \"window_start\", {start} + {size_text} AS \"window_end\" \
             FROM {table} CROSS JOIN (VALUES {}) AS \"__hops\"(\"{HOP_BACK}\"))",
            backs.join(", ")
        ),
    ))
}

/// `name` as a quoted SQL identifier.
pub fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
