//! The audit log's tamper evidence, as the application runs it: signed checkpoints of the
//! chain head, and verification of the whole log against them and against copies kept outside.

use std::collections::HashMap;

use zf_audit::{
    Actor, Archive, ArchiveManifest, AuditAction, AuditEvent, Checkpoint, Finding, Outcome, Report,
    StoredEvent, Verifier, GENESIS,
};

use zf_policy::Grant;
use zf_store::{ArchiveRecord, AuditQuery};

use crate::{now_ms, App, AppError, RequestMeta};

const PAGE: u32 = 10_000;

impl App {
    /// The Ed25519 public key that signs this deployment's checkpoints.
    pub fn audit_public_key(&self) -> [u8; 32] {
        self.keys.audit_signing().public_key()
    }

    /// Seals the chain head with a signed checkpoint, unless it has not moved since the last
    /// one. Several nodes may call this at once; one checkpoint per position is kept.
    pub async fn audit_checkpoint(&self) -> Result<Option<Checkpoint>, AppError> {
        let head = self.store.audit_head().await?;
        let (seq, hash) = (head.seq, head.hash);
        if seq == 0 {
            return Ok(None);
        }
        let last = self
            .store
            .audit_checkpoints()
            .await?
            .last()
            .map_or(0, |c| c.seq);
        if seq <= last {
            return Ok(None);
        }
        let checkpoint = Checkpoint::sign(seq, &hash, now_ms(), self.keys.audit_signing());
        self.store.audit_checkpoint_add(checkpoint.clone()).await?;
        Ok(Some(checkpoint))
    }

    pub async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, AppError> {
        Ok(self.store.audit_checkpoints().await?)
    }

    /// Searches the audit log for an audit administrator; the search itself is audited, with
    /// its filters, so investigations leave a trail too.
    pub async fn audit_search(
        &self,
        grant: &Grant,
        query: AuditQuery,
        meta: &RequestMeta,
    ) -> Result<Vec<StoredEvent>, AppError> {
        let found = self.store.audit_search(&query).await?;
        let event = AuditEvent::new(
            now_ms(),
            crate::actor(grant, meta),
            AuditAction::AuditSearched,
            Outcome::Success,
        )
        .request(meta.request_id.clone())
        .detail(describe(&query));
        self.store.audit_append(event).await?;
        Ok(found)
    }

    /// Writes the whole log as JSON lines (oldest first) for security tooling; returns how
    /// many events it wrote. Events hold field names only, never values, so the file holds
    /// nothing sensitive — it still names people, so callers create it owner-only.
    pub async fn audit_export(
        &self,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<u64, AppError> {
        let mut after = 0;
        let mut count = 0;
        loop {
            let page = self.store.audit_events(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in &page {
                let line =
                    serde_json::to_string(e).map_err(|e| AppError::Internal(e.to_string()))?;
                writeln!(out, "{line}")
                    .map_err(|e| AppError::Internal(format!("cannot write the export: {e}")))?;
                count += 1;
            }
        }
        out.flush()
            .map_err(|e| AppError::Internal(format!("cannot write the export: {e}")))?;
        Ok(count)
    }

    /// Moves the oldest events, up to `before_ms` and never younger than the retention, to a
    /// signed, compressed archive written to `out`, after checking the whole log verifies.
    /// Returns the archive's manifest, or `None` if nothing is old enough.
    pub async fn audit_archive(
        &self,
        before_ms: i64,
        out: &mut (dyn std::io::Write + Send),
        operator: Actor,
    ) -> Result<Option<ArchiveManifest>, AppError> {
        let retention = i64::from(self.config.audit_retention_days) * 86_400_000;
        let cutoff = before_ms.min(now_ms() - retention);
        let Some((first, last)) = self.store.audit_archivable(cutoff).await? else {
            return Ok(None);
        };
        let report = self.audit_verify(&[]).await?;
        if let Some(f) = report.findings.first() {
            return Err(AppError::Invalid(format!(
                "the audit log does not verify, so nothing is archived: {f}"
            )));
        }
        let mut events = Vec::new();
        let mut after = first - 1;
        while after < last {
            let page = self.store.audit_events(after, PAGE).await?;
            let Some(tail) = page.last() else { break };
            after = tail.seq;
            events.extend(page.into_iter().filter(|e| e.seq <= last));
        }
        let manifest = Archive::write(&events, now_ms(), self.keys.audit_signing(), out)
            .map_err(|e| AppError::Internal(format!("cannot write the archive: {e}")))?;
        let record = ArchiveRecord {
            first_seq: manifest.first_seq,
            last_seq: manifest.last_seq,
            last_hash: manifest.last_hash.clone(),
            sha256: manifest.sha256.clone(),
            created_at_ms: manifest.created_at_ms,
            signature: manifest.signature.clone(),
        };
        let event = AuditEvent::new(
            now_ms(),
            operator,
            AuditAction::AuditArchived,
            Outcome::Success,
        )
        .detail(format!(
            "events #{} to #{} archived",
            manifest.first_seq, manifest.last_seq
        ));
        self.store.audit_archive_commit(record, event).await?;
        Ok(Some(manifest))
    }

    /// Records who ran a verification or an export, and what it found, in the log itself.
    pub async fn audit_record_operation(
        &self,
        operator: Actor,
        action: AuditAction,
        outcome: Outcome,
        detail: String,
    ) -> Result<(), AppError> {
        let event = AuditEvent::new(now_ms(), operator, action, outcome).detail(detail);
        Ok(self.store.audit_append(event).await?)
    }

    /// Walks the whole log and checks every link, the chain head, the checkpoints stored in the
    /// database and `external` ones kept elsewhere (exported files), all against this
    /// deployment's audit key.
    pub async fn audit_verify(&self, external: &[Checkpoint]) -> Result<Report, AppError> {
        self.audit_verify_with_archives(external, &[]).await
    }

    /// As [`App::audit_verify`], and also checks archive files: each must be signed by the audit
    /// key, chain correctly inside, follow the one before it, and match what the log recorded
    /// when it was archived.
    pub async fn audit_verify_with_archives(
        &self,
        external: &[Checkpoint],
        archives: &[Archive],
    ) -> Result<Report, AppError> {
        let trusted = self.audit_public_key();
        let key = self.keys.audit_chain();
        let records = self.store.audit_archives().await?;
        let mut archive_findings = Vec::new();
        let (mut expect_seq, mut expect_hash) = (0, GENESIS.to_vec());
        for a in archives {
            let m = &a.manifest;
            let mut problem = |p: &str| {
                archive_findings.push(Finding::Archive {
                    first: m.first_seq,
                    last: m.last_seq,
                    problem: p.to_owned(),
                })
            };
            if !m.signed_by(&trusted) {
                problem("its manifest is not signed by this deployment's audit key");
            }
            if m.first_seq != expect_seq + 1 || m.first_prev_hash != expect_hash {
                problem("it does not follow the archive (or the start of the log) before it");
            }
            match records.iter().find(|r| r.last_seq == m.last_seq) {
                Some(r)
                    if r.first_seq == m.first_seq
                        && r.last_hash == m.last_hash
                        && r.sha256 == m.sha256 => {}
                Some(_) => problem("it differs from the archive the log recorded"),
                None => problem("the log recorded no such archive"),
            }
            let mut inner = Verifier::new(key, m.first_seq - 1, &m.first_prev_hash);
            let by_hash: HashMap<Vec<u8>, i64> =
                a.events.iter().map(|e| (e.hash.clone(), e.seq)).collect();
            for e in &a.events {
                inner.feed(e, |h| by_hash.get(h).copied());
            }
            let inner = inner.finish(Some((m.last_seq, m.last_hash.clone())));
            archive_findings.extend(inner.findings);
            expect_seq = m.last_seq;
            expect_hash = m.last_hash.clone();
        }
        // The log in the database continues after the last archived segment.
        let (start_seq, start_hash) = records
            .last()
            .map_or((0, GENESIS.to_vec()), |r| (r.last_seq, r.last_hash.clone()));
        if !archives.is_empty() && (expect_seq, &expect_hash) != (start_seq, &start_hash) {
            archive_findings.push(Finding::Archive {
                first: expect_seq,
                last: start_seq,
                problem: "the archives given do not reach the start of the log in the database"
                    .into(),
            });
        }
        let mut verifier = Verifier::new(key, start_seq, &start_hash);
        for cp in self.store.audit_checkpoints().await? {
            verifier.expect(&cp, &trusted, "database");
        }
        for cp in external {
            verifier.expect(cp, &trusted, "exported checkpoint");
        }
        // The walk stops at the head read now; events appended meanwhile are not its business.
        let start = self.store.audit_head().await?;
        let mut after = 0;
        // Each lookup outside the page is a scan of the table (links are not indexed, to keep
        // appends cheap); a log damaged everywhere is described by its first breaks only.
        let mut lookups_left = 64;
        'walk: loop {
            let page = self.store.audit_events(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            let mut found: HashMap<Vec<u8>, i64> =
                page.iter().map(|r| (r.hash.clone(), r.seq)).collect();
            for row in &page {
                if let Some(link) = verifier.lookup_needed(row) {
                    if let std::collections::hash_map::Entry::Vacant(slot) = found.entry(link) {
                        if lookups_left == 0 {
                            continue;
                        }
                        lookups_left -= 1;
                        if let Some(seq) = self.store.audit_seq_of_hash(slot.key()).await? {
                            slot.insert(seq);
                        }
                    }
                }
            }
            for row in &page {
                if row.seq > start.seq {
                    break 'walk;
                }
                verifier.feed(row, |h| found.get(h).copied());
            }
        }
        let mut report = verifier.finish(Some((start.seq, start.hash)));
        report.events += archives.iter().map(|a| a.events.len() as u64).sum::<u64>();
        archive_findings.append(&mut report.findings);
        report.findings = archive_findings;
        // Rows beyond the head in one snapshot were not written by the application.
        let end = self.store.audit_head().await?;
        if end.max_event_seq > end.seq {
            report
                .findings
                .push(Finding::AppendedOutside { first: end.seq + 1 });
        }
        Ok(report)
    }
}

/// The filters of a search in words, for its own audit event.
fn describe(q: &AuditQuery) -> String {
    let mut parts = Vec::new();
    for (name, value) in [
        ("actor", q.actor.as_deref()),
        ("resource", q.resource.as_deref()),
        ("record", q.record_id.as_deref()),
        ("action", q.action.as_deref()),
        ("source", q.source.as_deref()),
    ] {
        if let Some(v) = value {
            parts.push(format!("{name}={v}"));
        }
    }
    if let Some(v) = q.from_ms {
        parts.push(format!("from={v}"));
    }
    if let Some(v) = q.to_ms {
        parts.push(format!("to={v}"));
    }
    if parts.is_empty() {
        "all events".into()
    } else {
        parts.join(" ")
    }
}
