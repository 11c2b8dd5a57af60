//! A request's script converted, in the contract's terms (preview,
//! batches, the execution answer).

use super::{translate, Action, Outcome, Statement};
use crate::api::models;
use sha2::{Digest, Sha256};

/// A request's script converted, in the contract's terms.
#[derive(Debug, Clone)]
pub struct Plan {
    pub original_sql: String,
    pub statements: Vec<Statement>,
    pub strict: bool,
}

impl Plan {
    /// The script is `schemaSql`, else the `files` joined, else the
    /// `statements` joined (each ended by `;`). Non-strict mode turns
    /// errors into warnings (the statement is skipped).
    pub fn from_request(body: &models::D1MigrationRequest) -> Plan {
        let original_sql = match body.schema_sql.as_deref() {
            Some(s) if !s.trim().is_empty() => s.to_string(),
            _ if !body.files.is_empty() => body.files.join(";\n"),
            _ => body.statements.join(";\n"),
        };
        let mut statements = translate(&original_sql);
        if !body.strict {
            for s in &mut statements {
                let errors = std::mem::take(&mut s.errors);
                s.warnings.extend(errors);
            }
        }
        Plan {
            original_sql,
            statements,
            strict: body.strict,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    pub fn errors(&self) -> usize {
        self.statements.iter().map(|s| s.errors.len()).sum()
    }

    fn applied(&self) -> impl Iterator<Item = &Statement> {
        self.statements
            .iter()
            .filter(|s| s.action == Action::Converted && s.errors.is_empty())
    }

    /// The converted statements in order, each ended by `;`.
    pub fn converted_sql(&self) -> String {
        self.applied().map(|s| format!("{};\n", s.target)).collect()
    }

    fn diagnostics(&self, errors: bool) -> Vec<models::D1MigrationDiagnostic> {
        self.statements
            .iter()
            .flat_map(|s| {
                let list = if errors { &s.errors } else { &s.warnings };
                list.iter().map(move |d| models::D1MigrationDiagnostic {
                    code: d.code.to_string(),
                    message: d.message.clone(),
                    source_range: range(s),
                    statement_index: s.index as i32,
                })
            })
            .collect()
    }

    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.original_sql.as_bytes()))
    }

    /// `D1MigrationPreviewResponse` with `status`.
    pub fn preview(&self, status: &str) -> models::D1MigrationPreviewResponse {
        let mut order = 0;
        let statements = self
            .statements
            .iter()
            .map(|s| {
                let applied = s.action == Action::Converted && s.errors.is_empty();
                let apply_order = if applied {
                    order += 1;
                    order - 1
                } else {
                    -1
                };
                models::D1MigrationPlanEntry {
                    action: match (applied, s.warnings.is_empty()) {
                        (false, _) => models::D1MigrationAction::Skipped,
                        (true, true) => models::D1MigrationAction::Converted,
                        (true, false) => models::D1MigrationAction::Warning,
                    },
                    apply_order,
                    source_range: range(s),
                    source_sql: s.source.clone(),
                    statement_index: s.index as i32,
                    target_sql: s.target.clone(),
                }
            })
            .collect();
        models::D1MigrationPreviewResponse {
            converted_sql: self.converted_sql(),
            errors: self.diagnostics(true),
            original_sql: self.original_sql.clone(),
            source_meta: models::D1MigrationSourceMeta {
                estimated_apply_order: self.applied().map(|s| s.index as i32).collect(),
                fingerprint: self.fingerprint(),
                statement_count: self.statements.len() as i32,
            },
            statements,
            status: status.to_string(),
            warnings: self.diagnostics(false),
        }
    }

    /// The converted statements grouped by `batchSize` (all in one batch
    /// when absent): each batch is one D1 `/query` request.
    pub fn batches(&self, batch_size: Option<u32>) -> Vec<Vec<String>> {
        let size = batch_size.unwrap_or(u32::MAX).max(1) as usize;
        let all: Vec<String> = self.applied().map(|s| s.target.clone()).collect();
        all.chunks(size).map(<[String]>::to_vec).collect()
    }

    /// `D1MigrationExecutionResponse` after every batch ran on D1;
    /// `outcomes` are D1's results of the converted statements, in order.
    pub fn executed(
        &self,
        batch_size: Option<u32>,
        outcomes: &[Outcome],
    ) -> models::D1MigrationExecutionResponse {
        let batch = batch_size.unwrap_or(u32::MAX).max(1) as usize;
        let mut n = 0usize;
        let per_statement_results = self
            .statements
            .iter()
            .map(|s| {
                let applied = s.action == Action::Converted && s.errors.is_empty();
                let batch_index = (n / batch) as i32;
                let outcome = if applied {
                    n += 1;
                    outcomes.get(n - 1).copied().unwrap_or_default()
                } else {
                    Outcome::default()
                };
                models::D1MigrationAppliedStatementResult {
                    batch_index: if applied { batch_index } else { -1 },
                    duration_ms: outcome.duration_ms,
                    rows_affected: outcome.rows_affected,
                    source_sql: s.source.clone(),
                    statement_index: s.index as i32,
                    status: if applied { "applied" } else { "skipped" }.into(),
                    target_sql: s.target.clone(),
                }
            })
            .collect();
        models::D1MigrationExecutionResponse {
            converted_sql: self.converted_sql(),
            errors: self.diagnostics(true),
            original_sql: self.original_sql.clone(),
            per_statement_results,
            plan_id: Some(self.fingerprint()),
            status: "applied".into(),
            warnings: self.diagnostics(false),
        }
    }

    /// Why strict mode refuses the script (the 422's detail): the count
    /// and the first unsupported construct.
    pub fn untranslatable(&self) -> String {
        let first = self
            .statements
            .iter()
            .find_map(|s| s.errors.first().map(|e| (s.index, e)));
        match first {
            Some((i, e)) => format!(
                "{} unsupported construct(s) (strict mode); statement {i}: {} ({})",
                self.errors(),
                e.message,
                e.code
            ),
            None => "unsupported statements".into(),
        }
    }
}

fn range(s: &Statement) -> models::D1MigrationSourceRange {
    models::D1MigrationSourceRange {
        end_column: s.span.end_column as i32,
        end_line: s.span.end_line as i32,
        start_column: s.span.start_column as i32,
        start_line: s.span.start_line as i32,
        statement_index: s.index as i32,
    }
}
