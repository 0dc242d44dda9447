//! A pump's SELECT, made DataFusion's: names matched as KDA matches them, `FLOOR(t TO
//! unit)` as a bucket, the kind of window found (a time bucket in GROUP BY: tumbling; a
//! window function with a frame: sliding; else row by row), the frames ordered by
//! ROWTIME, and the hidden columns (`__rowtime`, `__row`) added; then planned once on
//! empty tables, to check it and to learn which of its columns fill the target's.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::arrow::compute::can_cast_types;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::sqlparser::ast::{
    CeilFloorKind, DateTimeField, Expr, FunctionArguments, GroupByExpr, Ident, NamedWindowExpr,
    ObjectNamePart, OrderByExpr, OrderByOptions, Query, Select, SelectItem, SetExpr, Statement,
    TableFactor, Value, WindowFrame, WindowFrameBound, WindowFrameUnits, WindowSpec, WindowType,
    visit_expressions, visit_expressions_mut, visit_relations, visit_relations_mut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::statement::PumpHeader;
use super::text::{self, ORIGIN, quoted};
use super::{InAppStream, KdaError, Names, Pump, ROW, ROWTIME_OUT, Window};
use crate::analytics::schema;

/// Columns a `*` leaves out: the metadata and the translation's own.
const HIDDEN: [&str; 9] = [
    schema::ROWTIME,
    schema::APPROXIMATE_ARRIVAL_TIME,
    schema::PARTITION_KEY,
    schema::SEQUENCE_NUMBER,
    schema::SHARD_ID,
    ROW,
    ROWTIME_OUT,
    text::WINDOW_END,
    text::HOP_BACK,
];

/// Aggregates that make no sense on a stream without a window.
const AGGREGATES: [&str; 6] = ["COUNT", "SUM", "AVG", "MIN", "MAX", "APPROX_DISTINCT"];

/// Translates one pump.
///
/// # Errors
/// The query does not parse or plan, names no stream or two, has an unbounded window, or
/// does not fit its target.
pub async fn pump(
    ctx: &SessionContext,
    header: &PumpHeader,
    target: &InAppStream,
    names: &Names,
    references: &[String],
) -> Result<Pump, KdaError> {
    let at = header.at;
    let fail = |message: String| KdaError::new(at, message);
    let resolve = |column: &str| names.canonical_column(column);
    let rewritten = text::rewrite(&header.query, at, &resolve)?;
    let mut query = parse_query(&rewritten.sql).map_err(&fail)?;
    canonical_names(&mut query, names);
    floor_to_buckets(&mut query).map_err(fail)?;
    similar_to_regex(&mut query).map_err(fail)?;
    let source = source_of(&query, names, references).map_err(fail)?;
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(fail(
            "a pump's query is one SELECT (no UNION, VALUES or INTERSECT)".into(),
        ));
    };
    let select = select.as_mut();
    let (window, rowtime, row) = classify(select, &rewritten, &source).map_err(fail)?;
    let user_items = select.projection.clone();
    select.projection.push(SelectItem::ExprWithAlias {
        expr: rowtime,
        alias: Ident::with_quote('"', ROWTIME_OUT),
    });
    if let Some(row) = row {
        select.projection.push(SelectItem::ExprWithAlias {
            expr: row,
            alias: Ident::with_quote('"', ROW),
        });
    }
    let sql = query.to_string();
    let planned = ctx
        .sql(&sql)
        .await
        .map_err(|e| fail(format!("pump {}: {e}", header.name)))?;
    let reads =
        columns_read(&planned, &source).map_err(|e| fail(format!("pump {}: {e}", header.name)))?;
    let fields: Vec<_> = planned
        .schema()
        .as_arrow()
        .fields()
        .iter()
        .cloned()
        .collect();
    let hidden_count = if matches!(window, Window::Tumbling { .. } | Window::Hopping { .. }) {
        1
    } else {
        2
    };
    let user_fields = fields.len() - hidden_count;
    let visible = visible_columns(ctx, &query, &user_items, user_fields)
        .await
        .map_err(fail)?;
    let wanted: Vec<usize> = match &header.columns {
        None => (0..target.columns.len()).collect(),
        Some(listed) => listed
            .iter()
            .map(|(name, quoted)| {
                target
                    .columns
                    .iter()
                    .position(|(c, _)| {
                        if *quoted {
                            c == name
                        } else {
                            c.eq_ignore_ascii_case(name)
                        }
                    })
                    .ok_or_else(|| fail(format!("{} has no column {name}", target.name)))
            })
            .collect::<Result<_, _>>()?,
    };
    if wanted.len() != visible.len() {
        return Err(fail(format!(
            "pump {} selects {} columns for {} column(s) of {}",
            header.name,
            visible.len(),
            wanted.len(),
            target.name
        )));
    }
    let mut columns = Vec::new();
    for (&column, &index) in wanted.iter().zip(&visible) {
        let (name, ty) = &target.columns[column];
        let from = fields[index].data_type();
        if !can_cast_types(from, &schema::arrow_type(*ty)) {
            return Err(fail(format!(
                "pump {}: column {name} is {}, and {from} does not convert to it",
                header.name,
                ty.sql_name()
            )));
        }
        columns.push((name.clone(), *ty, index));
    }
    Ok(Pump {
        name: header.name.clone(),
        target: target.name.clone(),
        source,
        window,
        sql,
        columns,
        reads,
    })
}

/// The columns of `source` the optimized plan reads, and `ROWTIME` and `__row` always.
fn columns_read(planned: &DataFrame, source: &str) -> datafusion::error::Result<Vec<String>> {
    let plan = planned.clone().into_optimized_plan()?;
    let mut reads: BTreeSet<String> = [schema::ROWTIME.to_string(), ROW.to_string()].into();
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && scan.table_name.table() == source
        {
            reads.extend(
                scan.projected_schema
                    .fields()
                    .iter()
                    .map(|f| f.name().clone()),
            );
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(reads.into_iter().collect())
}

fn parse_query(sql: &str) -> Result<Query, String> {
    let mut statements = Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| e.to_string())?;
    match (statements.pop(), statements.is_empty()) {
        (Some(Statement::Query(query)), true) => Ok(*query),
        _ => Err("expected one SELECT after INSERT INTO".into()),
    }
}

fn parse_expr(sql: &str) -> Result<Expr, String> {
    Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| format!("{sql}: {e}"))
}

/// Unquoted column and table names as the tables spell them (KDA ignores case for them).
fn canonical_names(query: &mut Query, names: &Names) {
    let canon = |ident: &mut Ident, column: bool| {
        if ident.quote_style.is_some() {
            return;
        }
        let found = if column {
            names.canonical_column(&ident.value)
        } else {
            names.canonical_stream(&ident.value)
        };
        if found != ident.value
            || found
                .chars()
                .any(|c| !c.is_ascii_alphanumeric() && c != '_')
        {
            *ident = Ident::with_quote('"', found);
        }
    };
    let _ = visit_expressions_mut(query, |expr| {
        match expr {
            Expr::Identifier(ident) => canon(ident, true),
            Expr::CompoundIdentifier(parts) => {
                let last = parts.len() - 1;
                for (i, part) in parts.iter_mut().enumerate() {
                    if i == last {
                        canon(part, true);
                    } else if names.is_table(&names.canonical_stream(&part.value)) {
                        canon(part, false);
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = visit_relations_mut(query, |name| {
        if let [ObjectNamePart::Identifier(ident)] = name.0.as_mut_slice() {
            canon(ident, false);
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `FLOOR(t TO MINUTE)` → `date_bin(INTERVAL '1' MINUTE, t, <epoch>)`.
fn floor_to_buckets(query: &mut Query) -> Result<(), String> {
    let flow = visit_expressions_mut(query, |expr| {
        if let Expr::Floor {
            expr: time,
            field: CeilFloorKind::DateTimeField(field),
        } = expr
        {
            let unit = match field {
                DateTimeField::Second => "SECOND",
                DateTimeField::Minute => "MINUTE",
                DateTimeField::Hour => "HOUR",
                DateTimeField::Day => "DAY",
                other => {
                    return ControlFlow::Break(format!(
                        "FLOOR(... TO {other}) is not a fixed-size window: use SECOND, \
                         MINUTE, HOUR or DAY, or STEP(... BY INTERVAL ...)"
                    ));
                }
            };
            match parse_expr(&format!("date_bin(INTERVAL '1' {unit}, {time}, {ORIGIN})")) {
                Ok(bucket) => *expr = bucket,
                Err(e) => return ControlFlow::Break(e),
            }
        }
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// `x SIMILAR TO 'pattern'` → a regular expression match: DataFusion reads SIMILAR TO's
/// pattern as a regular expression, where SQL's `%` and `_` mean nothing.
fn similar_to_regex(query: &mut Query) -> Result<(), String> {
    let flow = visit_expressions_mut(query, |expr| {
        let Expr::SimilarTo {
            negated,
            expr: value,
            pattern,
            escape_char: None,
        } = expr
        else {
            return ControlFlow::Continue(());
        };
        let Expr::Value(literal) = pattern.as_ref() else {
            return ControlFlow::Break("SIMILAR TO takes a string pattern".to_string());
        };
        let Value::SingleQuotedString(pattern) = &literal.value else {
            return ControlFlow::Break("SIMILAR TO takes a string pattern".to_string());
        };
        let mut regex = String::from("^(");
        for c in pattern.chars() {
            match c {
                '%' => regex.push_str(".*"),
                '_' => regex.push('.'),
                '.' | '^' | '$' | '\\' => {
                    regex.push('\\');
                    regex.push(c);
                }
                c => regex.push(c),
            }
        }
        regex.push_str(")$");
        let not = if *negated { "NOT " } else { "" };
        let sql = format!("{not}regexp_like({value}, '{}')", regex.replace('\'', "''"));
        match parse_expr(&sql) {
            Ok(matched) => *expr = matched,
            Err(e) => return ControlFlow::Break(e),
        }
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The one stream the query reads (its other tables are reference tables).
fn source_of(query: &Query, names: &Names, references: &[String]) -> Result<String, String> {
    let mut streams = BTreeSet::new();
    let mut unknown = None;
    let _ = visit_relations(query, |name| {
        if let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() {
            if references.contains(&ident.value) {
                return ControlFlow::<()>::Continue(());
            }
            if names.is_table(&ident.value) {
                streams.insert(ident.value.clone());
                return ControlFlow::Continue(());
            }
        }
        unknown.get_or_insert_with(|| name.to_string());
        ControlFlow::Continue(())
    });
    if let Some(name) = unknown {
        return Err(format!(
            "{name} is not an input (SOURCE_SQL_STREAM_001...), an in-application stream \
             created before this pump, or a reference table"
        ));
    }
    match streams.len() {
        0 => Err("the pump reads no stream: FROM \"SOURCE_SQL_STREAM_001\"".into()),
        1 => Ok(streams.into_iter().next().unwrap_or_default()),
        _ => Err(format!(
            "the pump reads {} streams ({}); a pump reads one stream, joined with reference \
             tables",
            streams.len(),
            streams.into_iter().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The window, the expression of an output row's event time, and of its source row.
fn classify(
    select: &mut Select,
    rewritten: &text::Rewritten,
    source: &str,
) -> Result<(Window, Expr, Option<Expr>), String> {
    let group_by: Vec<Expr> = match &select.group_by {
        GroupByExpr::Expressions(exprs, _) => exprs.clone(),
        GroupByExpr::All(_) => return Err("GROUP BY ALL is not supported on streams".into()),
    };
    if let Some(size_ms) = rewritten.function_window {
        return Ok((
            Window::Tumbling { size_ms },
            Expr::Identifier(Ident::with_quote('"', text::WINDOW_END)),
            None,
        ));
    }
    for expr in &group_by {
        if let Some((slide_ms, size_ms)) = rewritten.hop
            && let Some((_, end)) = bucket(expr, Some(size_ms))?
        {
            return Ok((Window::Hopping { slide_ms, size_ms }, end, None));
        }
        if let Some((size_ms, end)) = bucket(expr, rewritten.tumble)? {
            return Ok((Window::Tumbling { size_ms }, end, None));
        }
    }
    if !group_by.is_empty() {
        return Err(
            "GROUP BY on a stream needs a window: add STEP(\"S\".ROWTIME BY INTERVAL \
                    '60' SECOND), FLOOR(\"S\".ROWTIME TO MINUTE) or date_bin(...) to it"
                .into(),
        );
    }
    let reference = source_reference(select, source).ok_or_else(|| {
        format!(
            "a pump without a time bucket in GROUP BY reads {source} directly in its FROM \
             (not through a subquery)"
        )
    })?;
    let rowtime = parse_expr(&format!("{reference}.\"{}\"", schema::ROWTIME))?;
    let row = parse_expr(&format!("{reference}.\"{ROW}\""))?;
    let window = sliding(select, &reference, source)?;
    if window == Window::Rows && has_aggregate(select) {
        return Err(
            "an aggregate on a stream needs a window: GROUP BY STEP(\"S\".ROWTIME BY \
                    INTERVAL '60' SECOND), or OVER a sliding WINDOW"
                .into(),
        );
    }
    Ok((window, rowtime, Some(row)))
}

/// A GROUP BY expression that buckets time: its window size and the window's end.
fn bucket(expr: &Expr, tumble: Option<u64>) -> Result<Option<(u64, Expr)>, String> {
    if let Expr::Function(function) = expr
        && function.name.to_string().eq_ignore_ascii_case("date_bin")
    {
        let FunctionArguments::List(list) = &function.args else {
            return Ok(None);
        };
        let Some(first) = list.args.first() else {
            return Ok(None);
        };
        let first = parse_expr(&first.to_string())?;
        let size = interval_ms(&first)
            .ok_or_else(|| format!("{first} is not a window size (e.g. INTERVAL '60' SECOND)"))?;
        let end = parse_expr(&format!("{expr} + {first}"))?;
        return Ok(Some((size, end)));
    }
    let Some(size) = tumble else {
        return Ok(None);
    };
    let last = match expr {
        Expr::Identifier(ident) => ident,
        Expr::CompoundIdentifier(parts) => &parts[parts.len() - 1],
        _ => return Ok(None),
    };
    let end = match last.value.as_str() {
        "window_end" => expr.clone(),
        "window_start" => parse_expr(&format!("{expr} + INTERVAL '{size}' MILLISECOND"))?,
        _ => return Ok(None),
    };
    Ok(Some((size, end)))
}

/// How the top-level FROM names `source`: its alias, or its name.
fn source_reference(select: &Select, source: &str) -> Option<String> {
    select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .find_map(|factor| match factor {
            TableFactor::Table { name, alias, .. } if name.0.len() == 1 => {
                let named =
                    matches!(&name.0[0], ObjectNamePart::Identifier(i) if i.value == source);
                named.then(|| match alias {
                    Some(alias) => alias.name.to_string(),
                    None => quoted(source),
                })
            }
            _ => None,
        })
}

/// Sliding when a window function has a frame: each frame gets ORDER BY ROWTIME (KDA
/// orders by it implicitly); the window keeps the largest range and the rows `ROWS n`
/// frames reach, per partition.
fn sliding(select: &mut Select, reference: &str, source: &str) -> Result<Window, String> {
    let named_use = uses_named_window(select);
    let mut specs: Vec<&mut WindowSpec> = Vec::new();
    for def in &mut select.named_window {
        if let NamedWindowExpr::WindowSpec(spec) = &mut def.1 {
            specs.push(spec);
        }
    }
    let mut inline = Vec::new();
    for item in &mut select.projection {
        let (SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. }) = item else {
            continue;
        };
        let _ = visit_expressions_mut(expr, |e| {
            if let Expr::Function(f) = e
                && let Some(WindowType::WindowSpec(spec)) = &f.over
            {
                inline.push(spec.clone());
            }
            ControlFlow::<()>::Continue(())
        });
    }
    if specs.is_empty() && inline.is_empty() && !named_use {
        return Ok(Window::Rows);
    }
    let mut range_ms: Option<u64> = None;
    let mut keeps = Vec::new();
    let rowtime = parse_expr(&format!("{reference}.\"{}\"", schema::ROWTIME))?;
    let row = parse_expr(&format!("{reference}.\"{ROW}\""))?;
    let mut frame_of = |spec: &mut WindowSpec| -> Result<(), String> {
        let Some(frame) = &spec.window_frame else {
            return Err(
                "a window over a stream needs a frame: RANGE INTERVAL '1' MINUTE \
                        PRECEDING or ROWS 10 PRECEDING"
                    .into(),
            );
        };
        let bound = preceding(frame)?;
        match frame.units {
            WindowFrameUnits::Range => {
                let ms = interval_ms(&bound)
                    .ok_or_else(|| format!("RANGE {bound} PRECEDING: expected an INTERVAL"))?;
                range_ms = Some(range_ms.unwrap_or(0).max(ms));
                if spec.order_by.is_empty() {
                    spec.order_by.push(ascending(rowtime.clone()));
                }
            }
            WindowFrameUnits::Rows => {
                let n: u64 = bound
                    .to_string()
                    .parse()
                    .map_err(|_| format!("ROWS {bound} PRECEDING: expected a number"))?;
                let partition = spec
                    .partition_by
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                keeps.push((partition, n));
                if spec.order_by.is_empty() {
                    spec.order_by.push(ascending(rowtime.clone()));
                    spec.order_by.push(ascending(row.clone()));
                }
            }
            WindowFrameUnits::Groups => {
                return Err("GROUPS frames are not supported on streams".into());
            }
        }
        Ok(())
    };
    for spec in specs {
        frame_of(spec)?;
    }
    for item in &mut select.projection {
        let (SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. }) = item else {
            continue;
        };
        let flow = visit_expressions_mut(expr, |e| {
            if let Expr::Function(f) = e
                && let Some(WindowType::WindowSpec(spec)) = &mut f.over
                && let Err(message) = frame_of(spec)
            {
                return ControlFlow::Break(message);
            }
            ControlFlow::Continue(())
        });
        if let ControlFlow::Break(message) = flow {
            return Err(message);
        }
    }
    let keep_rows = (!keeps.is_empty()).then(|| keep_sql(&keeps, reference, source));
    Ok(Window::Sliding {
        range_ms,
        keep_rows,
    })
}

fn uses_named_window(select: &Select) -> bool {
    let mut found = false;
    for item in &select.projection {
        let _ = visit_expressions(item, |e| {
            if let Expr::Function(f) = e
                && matches!(f.over, Some(WindowType::NamedWindow(_)))
            {
                found = true;
            }
            ControlFlow::<()>::Continue(())
        });
    }
    found
}

/// The frame's start: `n PRECEDING` (UNBOUNDED and FOLLOWING never end on a stream).
fn preceding(frame: &WindowFrame) -> Result<Expr, String> {
    let bounded_end = matches!(frame.end_bound, None | Some(WindowFrameBound::CurrentRow));
    match &frame.start_bound {
        WindowFrameBound::Preceding(Some(bound)) if bounded_end => Ok(bound.as_ref().clone()),
        _ => Err(
            "a window over a stream reaches a bounded way back and ends at the \
                  current row (RANGE INTERVAL '1' MINUTE PRECEDING, ROWS 10 PRECEDING)"
                .into(),
        ),
    }
}

fn ascending(expr: Expr) -> OrderByExpr {
    OrderByExpr {
        expr,
        options: OrderByOptions {
            asc: Some(true),
            nulls_first: None,
        },
        with_fill: None,
    }
}

/// SQL giving the `__row` of the rows `ROWS n PRECEDING` frames still reach: each
/// partition's last `n` rows.
fn keep_sql(keeps: &[(String, u64)], reference: &str, source: &str) -> String {
    let numbers: Vec<String> = keeps
        .iter()
        .enumerate()
        .map(|(i, (partition, _))| {
            let partition = if partition.is_empty() {
                String::new()
            } else {
                format!("PARTITION BY {partition} ")
            };
            format!(
                "ROW_NUMBER() OVER ({partition}ORDER BY {reference}.\"{}\" DESC, \
                 {reference}.\"{ROW}\" DESC) AS \"__n{i}\"",
                schema::ROWTIME
            )
        })
        .collect();
    let conditions: Vec<String> = keeps
        .iter()
        .enumerate()
        .map(|(i, (_, n))| format!("\"__n{i}\" <= {n}"))
        .collect();
    format!(
        "SELECT \"{ROW}\" FROM (SELECT {reference}.\"{ROW}\", {} FROM {} AS {reference}) AS \
         \"__kept\" WHERE {}",
        numbers.join(", "),
        quoted(source),
        conditions.join(" OR ")
    )
}

fn has_aggregate(select: &Select) -> bool {
    let mut found = false;
    for item in &select.projection {
        let _ = visit_expressions(item, |e| {
            if let Expr::Function(f) = e
                && f.over.is_none()
                && AGGREGATES
                    .iter()
                    .any(|a| f.name.to_string().eq_ignore_ascii_case(a))
            {
                found = true;
            }
            ControlFlow::<()>::Continue(())
        });
    }
    found
}

/// Which of the query's first `user_fields` columns are the pump's: all of them, less the
/// hidden columns a `*` brought in.
async fn visible_columns(
    ctx: &SessionContext,
    query: &Query,
    items: &[SelectItem],
    user_fields: usize,
) -> Result<Vec<usize>, String> {
    let is_wildcard = |item: &SelectItem| {
        matches!(
            item,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    };
    if !items.iter().any(is_wildcard) {
        return Ok((0..user_fields).collect());
    }
    let mut visible = Vec::new();
    let mut at = 0;
    for item in items {
        if !is_wildcard(item) {
            visible.push(at);
            at += 1;
            continue;
        }
        for name in wildcard_columns(ctx, query, item).await? {
            if !HIDDEN.contains(&name.as_str()) {
                visible.push(at);
            }
            at += 1;
        }
    }
    Ok(visible)
}

/// The columns `item` (a `*`) gives over the query's FROM.
async fn wildcard_columns(
    ctx: &SessionContext,
    query: &Query,
    item: &SelectItem,
) -> Result<Vec<String>, String> {
    let mut only = query.clone();
    only.order_by = None;
    only.limit_clause = None;
    if let SetExpr::Select(select) = only.body.as_mut() {
        select.projection = vec![item.clone()];
        select.group_by = GroupByExpr::Expressions(Vec::new(), Vec::new());
        select.having = None;
        select.named_window.clear();
        select.distinct = None;
    }
    let planned = ctx
        .sql(&only.to_string())
        .await
        .map_err(|e| e.to_string())?;
    Ok(planned
        .schema()
        .as_arrow()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

/// An INTERVAL's length in ms: `INTERVAL '60' SECOND` or `INTERVAL '1 minute'` (no
/// months or years: they vary).
pub fn interval_ms(expr: &Expr) -> Option<u64> {
    let Expr::Interval(interval) = expr else {
        return None;
    };
    let Expr::Value(value) = interval.value.as_ref() else {
        return None;
    };
    let Value::SingleQuotedString(text) = &value.value else {
        return None;
    };
    if interval.last_field.is_some() {
        return None;
    }
    match &interval.leading_field {
        Some(field) => {
            let n: f64 = text.trim().parse().ok()?;
            unit_ms(&field.to_string()).map(|unit| (n * unit as f64) as u64)
        }
        None => {
            let mut total = 0u64;
            let mut words = text.split_whitespace();
            while let (Some(n), Some(unit)) = (words.next(), words.next()) {
                let n: f64 = n.parse().ok()?;
                total += (n * unit_ms(unit)? as f64) as u64;
            }
            (total > 0).then_some(total)
        }
    }
    .filter(|&ms| ms > 0)
}

/// [`interval_ms`] of SQL text.
pub fn interval_text_ms(sql: &str) -> Option<u64> {
    parse_expr(sql).ok().as_ref().and_then(interval_ms)
}

fn unit_ms(unit: &str) -> Option<u64> {
    let unit = unit.to_ascii_lowercase();
    let unit = unit.trim_end_matches('s');
    Some(match unit {
        "millisecond" => 1,
        "second" => 1_000,
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        _ => return None,
    })
}
