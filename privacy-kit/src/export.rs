//! Export bundles: everything the schema reaches from a subject, as a zip of one JSON Lines file
//! per entity plus a `manifest.json` with the format version, the subject, the generation time,
//! and each file's record count, size and SHA-256.
//!
//! The writer streams: records are read page by page and written straight into the zip, so only
//! the ids of records that have children are held in memory, never the records. Secret fields
//! (and anything that looks like a sealed vault token) appear as `"[redacted]"`.
//!
//! [`verify_bundle`] reads a bundle back and checks its manifest and checksums.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Read, Seek, Write};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::audit::AuditEvent;
use crate::cascade::{resolve_subject, Subject};
use crate::error::{Error, ErrorKind, Result};
use crate::schema::{RedactedFields, Schema};
use crate::store::{Anchors, AuditLog, Page, Record, RecordStore};

/// The `format` value of a manifest.
pub const FORMAT: &str = "privacy-kit-export";
/// The manifest format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name inside the bundle.
pub const MANIFEST_NAME: &str = "manifest.json";
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// One data file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManifestFile {
    /// File name inside the zip (`<entity>.jsonl`).
    pub name: String,
    /// The entity whose records it holds.
    pub entity: String,
    /// Number of records (lines).
    pub records: u64,
    /// Uncompressed size in bytes.
    pub bytes: u64,
    /// SHA-256 of the uncompressed content, lowercase hex.
    pub sha256: String,
}

/// The manifest of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version.
    pub format_version: u32,
    /// Whose data.
    pub subject: Subject,
    /// When the bundle was made.
    pub generated_at: DateTime<Utc>,
    /// The data files.
    pub files: Vec<ManifestFile>,
}

impl Manifest {
    /// Total records over all files.
    pub fn records(&self) -> u64 {
        self.files.iter().map(|f| f.records).sum()
    }
}

/// What [`export_subject`] produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct Export<W> {
    /// The manifest written into the bundle.
    pub manifest: Manifest,
    /// SHA-256 of the manifest's bytes, lowercase hex.
    pub manifest_sha256: String,
    /// The writer, positioned after the zip.
    pub writer: W,
}

#[derive(Serialize)]
struct Line<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    links: &'a std::collections::BTreeMap<String, String>,
    #[serde(flatten)]
    anchors: &'a Anchors,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymized_at: Option<DateTime<Utc>>,
    fields: RedactedFields<'a>,
}

struct EntityFile<'a, W: Write + Seek> {
    zip: &'a mut ZipWriter<W>,
    hasher: Sha256,
    records: u64,
    bytes: u64,
    line: Vec<u8>,
}

impl<W: Write + Seek> EntityFile<'_, W> {
    fn write(&mut self, schema: &Schema, record: &Record) -> Result<()> {
        self.line.clear();
        let line = Line {
            id: &record.id,
            links: &record.links,
            anchors: &record.anchors,
            anonymized_at: record.anonymized_at,
            fields: schema.redacted_view(record),
        };
        serde_json::to_writer(&mut self.line, &line)
            .map_err(|e| Error::invalid(format!("a record cannot be encoded as JSON: {e}")))?;
        self.line.push(b'\n');
        self.hasher.update(&self.line);
        self.zip.write_all(&self.line)?;
        self.records += 1;
        self.bytes += self.line.len() as u64;
        Ok(())
    }
}

/// Writes the export bundle of `subject` into `writer`. Reads pages of `page_size` records.
/// With an audit log, appends an `export_made` entry.
pub async fn export_subject<W: Write + Seek>(
    schema: &Schema,
    store: &dyn RecordStore,
    subject: &Subject,
    generated_at: DateTime<Utc>,
    writer: W,
    page_size: usize,
    audit: Option<&dyn AuditLog>,
) -> Result<Export<W>> {
    let page_size = page_size.max(1);
    let roots = resolve_subject(schema, store, subject).await?;
    let root_entities: BTreeSet<&str> = roots.iter().map(|(e, _)| e.as_str()).collect();
    // entities reachable from the roots' entities
    let mut reach: BTreeSet<&str> = BTreeSet::new();
    let mut frontier: Vec<&str> = schema
        .subjects()
        .iter()
        .filter(|m| m.kind == subject.kind)
        .map(|m| m.entity.as_str())
        .collect();
    while let Some(e) = frontier.pop() {
        if reach.insert(e) {
            frontier.extend(schema.children_of(e).map(|r| r.child.as_str()));
        }
    }
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    let mut zip = ZipWriter::new(writer);
    let mut ids: HashMap<&str, Vec<String>> = HashMap::new();
    let mut files = Vec::new();
    for entity in schema.topological_order() {
        let entity = entity.as_str();
        if !reach.contains(entity) {
            continue;
        }
        let name = format!("{entity}.jsonl");
        zip.start_file(name.as_str(), options)?;
        let incoming: Vec<_> = schema
            .parents_of(entity)
            .filter(|r| reach.contains(r.parent.as_str()))
            .collect();
        let dedupe = incoming.len() + usize::from(root_entities.contains(entity)) > 1;
        let keep_ids = schema.children_of(entity).next().is_some();
        let mut seen: HashSet<String> = HashSet::new();
        let mut kept: Vec<String> = Vec::new();
        let mut file = EntityFile {
            zip: &mut zip,
            hasher: Sha256::new(),
            records: 0,
            bytes: 0,
            line: Vec::with_capacity(512),
        };
        let mut accept = |record: &Record, file: &mut EntityFile<'_, W>| -> Result<()> {
            if dedupe && !seen.insert(record.id.clone()) {
                return Ok(());
            }
            if keep_ids {
                kept.push(record.id.clone());
            }
            file.write(schema, record)
        };
        for (e, id) in roots.iter().filter(|(e, _)| e == entity) {
            if let Some(record) = store.get(e, id).await? {
                accept(&record, &mut file)?;
            }
        }
        for rel in incoming {
            let parents = ids.get(rel.parent.as_str()).cloned().unwrap_or_default();
            for parent_id in parents {
                let mut page = Page::first(page_size);
                loop {
                    let records = store.linked(entity, &rel.link, &parent_id, &page).await?;
                    let full = records.len() >= page_size;
                    for record in &records {
                        accept(record, &mut file)?;
                    }
                    match (full, records.last()) {
                        (true, Some(last)) => page = Page::after(last.id.clone(), page_size),
                        _ => break,
                    }
                }
            }
        }
        files.push(ManifestFile {
            name,
            entity: entity.to_owned(),
            records: file.records,
            bytes: file.bytes,
            sha256: hex::encode(file.hasher.finalize()),
        });
        if keep_ids {
            ids.insert(entity, kept);
        }
    }
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        subject: subject.clone(),
        generated_at,
        files,
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::invalid(format!("the manifest cannot be encoded: {e}")))?;
    let manifest_sha256 = hex::encode(Sha256::digest(&manifest_bytes));
    zip.start_file(MANIFEST_NAME, options)?;
    zip.write_all(&manifest_bytes)?;
    let writer = zip.finish()?;
    if let Some(audit) = audit {
        audit
            .append(
                generated_at,
                AuditEvent::ExportMade {
                    subject: subject.clone(),
                    records: manifest.records(),
                    manifest_sha256: manifest_sha256.clone(),
                },
            )
            .await?;
    }
    Ok(Export {
        manifest,
        manifest_sha256,
        writer,
    })
}

fn bundle_io(name: &str, e: std::io::Error) -> Error {
    Error::bundle(format!("`{name}` cannot be read from the bundle: {e}")).with_source(e)
}

fn valid_file_name(name: &str) -> bool {
    name.strip_suffix(".jsonl").is_some_and(|stem| {
        !stem.is_empty()
            && stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// Reads a bundle and checks it: a manifest of a known format and version, exactly the files it
/// lists, each with the listed size, record count and SHA-256. Streams the files; returns the
/// manifest. Any mismatch is an [`ErrorKind::Bundle`] error saying which file and what differs.
pub fn verify_bundle<R: Read + Seek>(reader: R) -> Result<Manifest> {
    let mut archive = ZipArchive::new(reader)
        .map_err(|e| Error::bundle(format!("the file is not a readable zip archive: {e}")))?;
    let manifest: Manifest = {
        let file = archive.by_name(MANIFEST_NAME).map_err(|_| {
            Error::bundle("the bundle has no manifest.json; it was not made by an export")
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bundle_io(MANIFEST_NAME, e))?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::bundle("manifest.json is larger than 16 MiB"));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::bundle(format!("manifest.json is not a valid manifest: {e}")))?
    };
    if manifest.format != FORMAT {
        return Err(Error::bundle(format!(
            "manifest.json has format `{}`, expected `{FORMAT}`",
            manifest.format
        )));
    }
    if manifest.format_version != FORMAT_VERSION {
        return Err(Error::bundle(format!(
            "manifest.json has format version {}, this reader understands {FORMAT_VERSION}",
            manifest.format_version
        )));
    }
    let mut listed = HashSet::new();
    for f in &manifest.files {
        if !valid_file_name(&f.name) || f.name != format!("{}.jsonl", f.entity) {
            return Err(Error::bundle(format!(
                "manifest.json lists `{}`, which is not a valid data file name for entity `{}`",
                f.name, f.entity
            )));
        }
        if !listed.insert(f.name.as_str()) {
            return Err(Error::bundle(format!(
                "manifest.json lists `{}` twice",
                f.name
            )));
        }
    }
    let mut present = HashSet::new();
    for raw in archive.file_names_raw() {
        let name = String::from_utf8_lossy(raw);
        let name = name.as_ref();
        if name != MANIFEST_NAME && !listed.contains(name) {
            return Err(Error::bundle(format!(
                "the bundle contains `{name}`, which the manifest does not list"
            )));
        }
        if !present.insert(name.to_owned()) {
            return Err(Error::bundle(format!("the bundle contains `{name}` twice")));
        }
    }
    let mut buf = vec![0u8; 64 * 1024];
    for f in &manifest.files {
        let mut file = archive.by_name(&f.name).map_err(|_| {
            Error::bundle(format!(
                "`{}` is listed in the manifest but missing from the bundle",
                f.name
            ))
        })?;
        let mut hasher = Sha256::new();
        let (mut bytes, mut lines, mut last) = (0u64, 0u64, b'\n');
        loop {
            let n = file.read(&mut buf).map_err(|e| bundle_io(&f.name, e))?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            hasher.update(chunk);
            bytes += n as u64;
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            last = chunk[chunk.len() - 1];
        }
        let sha = hex::encode(hasher.finalize());
        let records = if last == b'\n' { lines } else { lines + 1 };
        if sha != f.sha256 {
            return Err(Error::bundle(format!(
                "`{}` does not match its SHA-256 in the manifest: the bundle was altered",
                f.name
            )));
        }
        if bytes != f.bytes || records != f.records {
            return Err(Error::bundle(format!(
                "`{}` has {records} records in {bytes} bytes, the manifest says {} in {}",
                f.name, f.records, f.bytes
            )));
        }
    }
    Ok(manifest)
}

/// Reads the records of one data file of a verified bundle, as JSON values, one per line.
pub fn read_records<R: Read + Seek>(reader: R, entity: &str) -> Result<Vec<Value>> {
    let mut archive = ZipArchive::new(reader)
        .map_err(|e| Error::bundle(format!("the file is not a readable zip archive: {e}")))?;
    let name = format!("{entity}.jsonl");
    let mut file = archive
        .by_name(&name)
        .map_err(|_| Error::new(ErrorKind::NotFound, format!("the bundle has no `{name}`")))?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| bundle_io(&name, e))?;
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| Error::bundle(format!("`{name}` has a line that is not JSON: {e}")))
        })
        .collect()
}
