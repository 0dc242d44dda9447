//! The two statements of a KDA script: `CREATE [OR REPLACE] STREAM name (columns)` and
//! `CREATE [OR REPLACE] PUMP name [STOPPED] AS INSERT INTO target [(columns)] SELECT ...`.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Location, Token};

use super::text::{self, Statement, Tok, location_of};
use super::{InAppStream, KdaError};
use crate::config::analytics::SqlType;

pub enum Parsed {
    Stream(InAppStream),
    Pump(PumpHeader),
}

/// A pump's statement up to its query, and the query's text.
pub struct PumpHeader {
    pub name: String,
    /// As written; matched to a declared stream by the caller.
    pub target: String,
    pub target_quoted: bool,
    /// `INSERT INTO t (a, b)`: the target columns the query fills, in its order.
    pub columns: Option<Vec<(String, bool)>>,
    pub query: String,
    pub at: Location,
}

/// A name as KDA reads it: quoted exactly, unquoted upper-cased.
pub fn declared_name(tok: &Tok) -> Option<String> {
    match &tok.token {
        Token::Word(w) if w.quote_style.is_some() => Some(w.value.clone()),
        Token::Word(w) => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// A name as written and whether it was quoted.
fn written_name(tok: &Tok) -> Option<(String, bool)> {
    match &tok.token {
        Token::Word(w) => Some((w.value.clone(), w.quote_style.is_some())),
        _ => None,
    }
}

/// # Errors
/// Not one of the two statements, or a malformed one.
pub fn parse(stmt: &Statement<'_>) -> Result<Parsed, KdaError> {
    let toks = text::tokens(stmt.text, stmt.at)?;
    let err = |i: usize, message: &str| {
        let offset = toks.get(i).map_or(stmt.text.len(), |t| t.start);
        KdaError::new(location_of(stmt.text, offset, stmt.at), message)
    };
    let mut i = 0;
    if !toks.first().is_some_and(|t| t.is_keyword(Keyword::CREATE)) {
        return Err(err(
            0,
            "expected CREATE OR REPLACE STREAM or CREATE OR REPLACE PUMP",
        ));
    }
    i += 1;
    if toks.get(i).is_some_and(|t| t.is_keyword(Keyword::OR)) {
        if !toks
            .get(i + 1)
            .is_some_and(|t| t.is_keyword(Keyword::REPLACE))
        {
            return Err(err(i + 1, "expected REPLACE after CREATE OR"));
        }
        i += 2;
    }
    let kind = toks.get(i);
    if kind.is_some_and(|t| t.is("STREAM")) {
        stream(stmt.text, &toks, i + 1, &err).map(Parsed::Stream)
    } else if kind.is_some_and(|t| t.is("PUMP")) {
        pump(stmt, &toks, i + 1, &err).map(Parsed::Pump)
    } else {
        Err(err(i, "expected STREAM or PUMP after CREATE OR REPLACE"))
    }
}

fn stream(
    text: &str,
    toks: &[Tok],
    at: usize,
    err: &dyn Fn(usize, &str) -> KdaError,
) -> Result<InAppStream, KdaError> {
    let name = toks
        .get(at)
        .and_then(declared_name)
        .ok_or_else(|| err(at, "expected the stream's name"))?;
    if toks.get(at + 1).is_none_or(|t| t.token != Token::LParen) {
        return Err(err(at + 1, "expected ( and the stream's columns"));
    }
    let mut columns = Vec::new();
    let mut i = at + 2;
    loop {
        let column = toks
            .get(i)
            .and_then(declared_name)
            .ok_or_else(|| err(i, "expected a column name"))?;
        // The type runs to the comma or the closing parenthesis at this depth.
        let mut depth = 0usize;
        let mut j = i + 1;
        while let Some(tok) = toks.get(j) {
            match tok.token {
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => break,
                Token::RParen => depth -= 1,
                Token::Comma if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        let ty = match (toks.get(i + 1), toks.get(j.saturating_sub(1))) {
            (Some(first), Some(last)) if j > i + 1 => &text[first.start..last.end],
            _ => "",
        };
        let parsed = SqlType::parse(ty).ok_or_else(|| {
            err(
                i + 1,
                &format!("column {column}: {ty:?} is not a type (VARCHAR(n), INTEGER, BIGINT, DOUBLE, REAL, DECIMAL(p,s), BOOLEAN, TIMESTAMP, DATE...)"),
            )
        })?;
        if columns
            .iter()
            .any(|(c, _): &(String, SqlType)| *c == column)
        {
            return Err(err(i, &format!("column {column} is declared twice")));
        }
        columns.push((column, parsed));
        match toks.get(j).map(|t| &t.token) {
            Some(Token::Comma) => i = j + 1,
            Some(Token::RParen) => break,
            _ => return Err(err(j, "expected , or ) after a column")),
        }
    }
    Ok(InAppStream { name, columns })
}

fn pump(
    stmt: &Statement<'_>,
    toks: &[Tok],
    at: usize,
    err: &dyn Fn(usize, &str) -> KdaError,
) -> Result<PumpHeader, KdaError> {
    let name = toks
        .get(at)
        .and_then(declared_name)
        .ok_or_else(|| err(at, "expected the pump's name"))?;
    let mut i = at + 1;
    if toks
        .get(i)
        .is_some_and(|t| t.is("STOPPED") || t.is("STARTED"))
    {
        i += 1;
    }
    for (keyword, word) in [
        (Keyword::AS, "AS"),
        (Keyword::INSERT, "INSERT"),
        (Keyword::INTO, "INTO"),
    ] {
        if !toks.get(i).is_some_and(|t| t.is_keyword(keyword)) {
            return Err(err(
                i,
                &format!("expected {word} (PUMP p AS INSERT INTO s SELECT ...)"),
            ));
        }
        i += 1;
    }
    let (target, target_quoted) = toks
        .get(i)
        .and_then(written_name)
        .ok_or_else(|| err(i, "expected the stream the pump inserts into"))?;
    i += 1;
    let mut columns = None;
    if toks.get(i).is_some_and(|t| t.token == Token::LParen) {
        let mut names = Vec::new();
        i += 1;
        loop {
            names.push(
                toks.get(i)
                    .and_then(written_name)
                    .ok_or_else(|| err(i, "expected a column of the target"))?,
            );
            match toks.get(i + 1).map(|t| &t.token) {
                Some(Token::Comma) => i += 2,
                Some(Token::RParen) => {
                    i += 2;
                    break;
                }
                _ => return Err(err(i + 1, "expected , or ) in the target's columns")),
            }
        }
        columns = Some(names);
    }
    let query_start = toks
        .get(i)
        .filter(|t| t.is_keyword(Keyword::SELECT) || t.is_keyword(Keyword::WITH))
        .ok_or_else(|| err(i, "expected SELECT STREAM ... after INSERT INTO"))?
        .start;
    Ok(PumpHeader {
        name,
        target,
        target_quoted,
        columns,
        query: stmt.text[query_start..].to_string(),
        at: location_of(stmt.text, query_start, stmt.at),
    })
}
