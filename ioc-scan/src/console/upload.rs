//! IOC files uploaded through the console (multipart): size limits per file
//! and per collection, file names reduced to a bare name (never used as a
//! path: files live in the database), and the parse of each file with its
//! errors (line and column) without stopping at a bad one. A collection is
//! also compiled as agents will: one over the compile budget is refused.

use super::error::{ConsoleError, Result};
use super::view;
use crate::eval::CompiledCollection;
use crate::openioc::{self, Diagnostic, OpenIocError};
use crate::store::{IocFile, NewCollection};
use axum::extract::multipart::{Field, Multipart, MultipartError};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Upload limits.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub max_file_bytes: usize,
    pub max_collection_bytes: usize,
    pub max_files: usize,
    /// Largest uploaded run (a device's result body), in bytes.
    pub max_result_bytes: usize,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            max_file_bytes: 4 << 20,
            max_collection_bytes: 32 << 20,
            max_files: 1000,
            max_result_bytes: super::api::MAX_RESULT_BODY,
        }
    }
}

/// What a multipart upload held: IOC files and the task settings (a JSON part named `task`).
#[derive(Debug, Default)]
pub struct Upload {
    pub files: Vec<IocFile>,
    pub task: Option<Value>,
}

/// Most bytes of the `task` JSON part.
const MAX_SETTINGS_BYTES: usize = 256 << 10;
/// Longest file name kept, in bytes.
const MAX_NAME_BYTES: usize = 255;

/// The bare file name of an uploaded file: the part after the last `/` or
/// `\`, without control characters, at most 255 bytes. Refuses names that
/// are empty or are `.` / `..`.
pub fn clean_file_name(raw: &str) -> Result<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = base.chars().filter(|c| !c.is_control()).collect();
    let name_trimmed = name.trim();
    if name_trimmed.is_empty() || name_trimmed == "." || name_trimmed == ".." {
        return Err(ConsoleError::Invalid(format!("{raw:?} is not a usable file name")));
    }
    name = name_trimmed.to_string();
    if name.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    Ok(name)
}

fn multipart_error(e: MultipartError) -> ConsoleError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ConsoleError::TooLarge(format!("the upload is larger than the limit: {}", e.body_text()))
    } else {
        ConsoleError::Invalid(format!("bad multipart upload: {}", e.body_text()))
    }
}

async fn read_field(field: &mut Field<'_>, limit: usize, too_large: impl Fn() -> ConsoleError) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Reads a multipart body: parts with a file name are IOC files, the part
/// named `task` is the settings (JSON); others are refused.
pub async fn read(mut multipart: Multipart, limits: &UploadLimits) -> Result<Upload> {
    let mut upload = Upload::default();
    let mut total = 0usize;
    let mut names: HashMap<String, ()> = HashMap::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let field_name = field.name().unwrap_or("").to_string();
        // (A browser sends a Blob part with a file name of its own: the name decides.)
        if field_name == "task" {
            let bytes = read_field(&mut field, MAX_SETTINGS_BYTES, || {
                ConsoleError::TooLarge(format!("the task settings are larger than {MAX_SETTINGS_BYTES} bytes"))
            })
            .await?;
            let value = serde_json::from_slice(&bytes)
                .map_err(|e| ConsoleError::Invalid(format!("the task part is not JSON: {e}")))?;
            upload.task = Some(value);
        } else if let Some(raw) = field.file_name().map(str::to_string) {
            let name = clean_file_name(&raw)?;
            if upload.files.len() >= limits.max_files {
                return Err(ConsoleError::TooLarge(format!("at most {} files per collection", limits.max_files)));
            }
            let max = limits.max_file_bytes.min(limits.max_collection_bytes - total.min(limits.max_collection_bytes));
            let bytes = read_field(&mut field, max, || {
                if limits.max_collection_bytes - total.min(limits.max_collection_bytes) < limits.max_file_bytes {
                    ConsoleError::TooLarge(format!(
                        "the IOC files are larger than the collection limit of {} bytes (at {name:?})",
                        limits.max_collection_bytes
                    ))
                } else {
                    ConsoleError::TooLarge(format!(
                        "IOC file {name:?} is larger than the limit of {} bytes per file",
                        limits.max_file_bytes
                    ))
                }
            })
            .await?;
            total += bytes.len();
            if names.insert(name.clone(), ()).is_some() {
                return Err(ConsoleError::Invalid(format!("two files are named {name:?}")));
            }
            upload.files.push(IocFile { name, bytes });
        } else {
            return Err(ConsoleError::Invalid(format!(
                "unexpected part {field_name:?}: send IOC files (with a file name) and an optional `task` JSON part"
            )));
        }
    }
    Ok(upload)
}

/// What reading one uploaded file gave.
#[derive(Debug)]
pub struct ParsedFile {
    pub name: String,
    pub size: usize,
    pub sha256: String,
    pub outcome: std::result::Result<(crate::indicator::Ioc, Vec<Diagnostic>), OpenIocError>,
}

/// Parses every file; a bad one does not stop the others.
pub fn parse_all(files: &[IocFile]) -> Vec<ParsedFile> {
    files
        .iter()
        .map(|f| ParsedFile {
            name: f.name.clone(),
            size: f.bytes.len(),
            sha256: hex::encode(Sha256::digest(&f.bytes)),
            outcome: openioc::parse_bytes(&f.name, &f.bytes).map(|p| (p.ioc, p.diagnostics)),
        })
        .collect()
}

fn error_json(e: &OpenIocError) -> Value {
    json!({ "kind": e.kind, "line": e.line, "column": e.column, "message": e.message })
}

/// Per file: name, size, sha256, IOC id, error (line, column) and diagnostics.
pub fn files_json(parsed: &[ParsedFile]) -> Vec<Value> {
    parsed
        .iter()
        .map(|p| {
            let (ioc, error, diagnostics) = match &p.outcome {
                Ok((ioc, diags)) => (Some(ioc.id.clone()), Value::Null, diags.clone()),
                Err(e) => (None, error_json(e), Vec::new()),
            };
            json!({
                "name": p.name,
                "size": p.size,
                "sha256": p.sha256,
                "ioc_id": ioc,
                "error": error,
                "diagnostics": diagnostics,
            })
        })
        .collect()
}

/// The preview of an upload: every file's outcome and the indicators of
/// those that loaded. IOC ids found in two files are reported.
pub fn preview(parsed: &[ParsedFile]) -> Value {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    let mut duplicates = Vec::new();
    let mut iocs = Vec::new();
    for p in parsed {
        if let Ok((ioc, _)) = &p.outcome {
            if let Some(first) = seen.insert(ioc.id.as_str(), p.name.as_str()) {
                duplicates.push(json!({ "ioc_id": ioc.id, "first": first, "second": p.name }));
            }
            iocs.push(view::ioc(ioc));
        }
    }
    let failed = parsed.iter().filter(|p| p.outcome.is_err()).count();
    json!({
        "files": files_json(parsed),
        "iocs": iocs,
        "failed_files": failed,
        "duplicate_ioc_ids": duplicates,
    })
}

/// The collection to store, or every file's outcome if any file failed to
/// load (nothing is saved then). With `skip_invalid`, the files that failed
/// are left out instead.
pub fn into_collection(files: Vec<IocFile>, skip_invalid: bool) -> Result<(NewCollection, Vec<Value>)> {
    let parsed = parse_all(&files);
    let report = files_json(&parsed);
    let failed: Vec<&ParsedFile> = parsed.iter().filter(|p| p.outcome.is_err()).collect();
    if !failed.is_empty() && !skip_invalid {
        let names: Vec<String> = failed
            .iter()
            .map(|p| match &p.outcome {
                Err(e) if e.line > 0 => format!("{} (line {}, column {}: {})", p.name, e.line, e.column, e.message),
                Err(e) => format!("{} ({})", p.name, e.message),
                Ok(_) => p.name.clone(),
            })
            .collect();
        return Err(ConsoleError::BadIocFiles {
            message: format!("{} IOC file(s) could not be read; nothing was saved: {}", failed.len(), names.join("; ")),
            files: Value::Array(report),
        });
    }
    let mut kept = Vec::new();
    let mut iocs = Vec::new();
    for (file, p) in files.into_iter().zip(parsed) {
        if let Ok((ioc, _)) = p.outcome {
            iocs.push(ioc);
            kept.push(file);
        }
    }
    if kept.is_empty() {
        return Err(ConsoleError::BadIocFiles {
            message: "no IOC file could be read".into(),
            files: Value::Array(report),
        });
    }
    check_compile_budget(&iocs, report.clone())?;
    Ok((NewCollection { files: kept, iocs }, report))
}

/// Refuses (422, with file, line, column and item) a collection that an
/// agent could not compile within its budget: refused here, at upload,
/// rather than by every agent mid-job.
fn check_compile_budget(iocs: &[crate::indicator::Ioc], mut report: Vec<Value>) -> Result<()> {
    // One check at a time: each may take the budget's memory, and uploads
    // run in parallel.
    static CHECKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let (diagnostics, _cost) = {
        let _one = CHECKING.lock().unwrap_or_else(|e| e.into_inner());
        CompiledCollection::check(iocs)
    };
    let over: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.over_budget).collect();
    let Some(first) = over.first() else {
        return Ok(());
    };
    for d in &over {
        if let Some(list) =
            report.iter_mut().find(|f| f["name"] == d.file.as_str()).and_then(|f| f["diagnostics"].as_array_mut())
        {
            list.push(json!(d));
        }
    }
    Err(ConsoleError::BadIocFiles {
        message: format!(
            "{} IOC(s) or item(s) exceed the compile budget; nothing was saved: {} (line {}, column {}, item {}): {}",
            over.len(),
            first.file,
            first.line,
            first.column,
            first.item_id.as_deref().unwrap_or("-"),
            first.message
        ),
        files: Value::Array(report),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_their_folders() {
        assert_eq!(clean_file_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(clean_file_name("C:\\x\\evil.ioc").unwrap(), "evil.ioc");
        assert_eq!(clean_file_name("a\u{0}b\n.ioc").unwrap(), "ab.ioc");
        assert!(clean_file_name("..").is_err());
        assert!(clean_file_name("dir/").is_err());
        assert!(clean_file_name("  ").is_err());
        assert_eq!(clean_file_name(&"é".repeat(200)).unwrap().len(), 254);
    }
}
