//! Verification of the chain, as a state machine fed with stored events in `seq` order. It is
//! pure: the caller pages through the store and answers the one question it cannot, "which
//! event has this link?", so that a moved event can be told from an edited one.

use std::collections::BTreeMap;
use std::fmt;

use zf_crypto::AuditChainKey;

use crate::{Checkpoint, StoredEvent, GENESIS};

/// Something `audit verify` found wrong, naming the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The event's content no longer matches its link.
    Edited { seq: i64 },
    /// A forged event stands at `seq`; the genuine events after it were shifted to make room.
    Inserted { seq: i64 },
    /// Events are missing from the sequence.
    Deleted { first: i64, last: i64 },
    /// A genuine event stands at `seq` although it was written at `original_seq`.
    Reordered { seq: i64, original_seq: i64 },
    /// The event is intact but does not follow the one before it.
    ChainBroken { seq: i64 },
    /// Events after `last_present` are gone; `evidence` says what proves they existed.
    Truncated {
        last_present: i64,
        expected: i64,
        evidence: String,
    },
    /// Events beyond the chain head: written into the table, not by the application.
    AppendedOutside { first: i64 },
    /// The log at `seq` differs from what a signed checkpoint sealed.
    CheckpointMismatch { seq: i64, source: String },
    /// A checkpoint whose signature does not verify under the trusted key.
    BadSignature { seq: i64, source: String },
    /// An archive segment that is not what the log recorded, or not signed by the audit key.
    Archive {
        first: i64,
        last: i64,
        problem: String,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Edited { seq } => write!(f, "event #{seq} was edited: its content does not match its link"),
            Finding::Inserted { seq } => write!(f, "event #{seq} was inserted: it is not genuine and the events after it were shifted"),
            Finding::Deleted { first, last } if first == last => write!(f, "event #{first} was deleted"),
            Finding::Deleted { first, last } => write!(f, "events #{first} to #{last} were deleted"),
            Finding::Reordered { seq, original_seq } => write!(f, "event #{seq} was reordered: it was written as event #{original_seq}"),
            Finding::ChainBroken { seq } => write!(f, "event #{seq} does not follow event #{}", seq - 1),
            Finding::Truncated { last_present, expected, evidence } => write!(f, "the log was truncated after event #{last_present}: {evidence} proves events up to #{expected}"),
            Finding::AppendedOutside { first } => write!(f, "events from #{first} on were added to the table outside the application"),
            Finding::CheckpointMismatch { seq, source } => write!(f, "the log at event #{seq} differs from the signed checkpoint ({source})"),
            Finding::BadSignature { seq, source } => write!(f, "the checkpoint at event #{seq} ({source}) is not signed by the trusted audit key"),
            Finding::Archive { first, last, problem } => write!(f, "the archive of events #{first} to #{last}: {problem}"),
        }
    }
}

impl Finding {
    fn seq(&self) -> i64 {
        match self {
            Finding::Edited { seq }
            | Finding::Inserted { seq }
            | Finding::Reordered { seq, .. }
            | Finding::ChainBroken { seq }
            | Finding::CheckpointMismatch { seq, .. }
            | Finding::BadSignature { seq, .. } => *seq,
            Finding::Deleted { last, .. } => *last,
            Finding::Truncated { last_present, .. } => *last_present,
            Finding::AppendedOutside { first } => *first,
            Finding::Archive { last, .. } => *last,
        }
    }
}

/// How far from its position a moved event is searched for when its predecessor is gone.
const SHIFT_SEARCH: i64 = 16;

pub struct Verifier<'k> {
    key: &'k AuditChainKey,
    last_seq: i64,
    last_hash: Vec<u8>,
    sealed: BTreeMap<i64, (Vec<u8>, String)>,
    findings: Vec<Finding>,
    /// Events shifted by the same offset as the previous one are one finding, not thousands.
    shift: Option<i64>,
    events: u64,
}

impl<'k> Verifier<'k> {
    /// Starts after `start_seq` whose link is `start_hash` (0 and [`GENESIS`] for a whole log).
    pub fn new(key: &'k AuditChainKey, start_seq: i64, start_hash: &[u8]) -> Self {
        Verifier {
            key,
            last_seq: start_seq,
            last_hash: start_hash.to_vec(),
            sealed: BTreeMap::new(),
            findings: Vec::new(),
            shift: None,
            events: 0,
        }
    }

    /// Registers a checkpoint the log must agree with; `trusted_key` is the audit public key.
    pub fn expect(&mut self, checkpoint: &Checkpoint, trusted_key: &[u8], source: &str) {
        if !checkpoint.signed_by(trusted_key) {
            self.findings.push(Finding::BadSignature {
                seq: checkpoint.seq,
                source: source.to_owned(),
            });
            return;
        }
        self.sealed
            .entry(checkpoint.seq)
            .or_insert_with(|| (checkpoint.hash.clone(), source.to_owned()));
    }

    fn links_at(&self, row: &StoredEvent, seq: i64) -> bool {
        self.key.link(&row.canonical_at(seq)).as_slice() == row.hash.as_slice()
    }

    /// Where a genuine event that fails at its position was written, if anywhere.
    fn original_position(
        &self,
        row: &StoredEvent,
        find: &mut impl FnMut(&[u8]) -> Option<i64>,
    ) -> Option<(i64, bool)> {
        let predecessor = if row.prev_hash == GENESIS {
            Some(0)
        } else {
            find(&row.prev_hash)
        };
        if let Some(p) = predecessor {
            return self.links_at(row, p + 1).then_some((p + 1, true));
        }
        (1..=SHIFT_SEARCH)
            .flat_map(|d| [row.seq + d, row.seq - d])
            .filter(|s| *s > 0)
            .find(|s| self.links_at(row, *s))
            .map(|s| (s, false))
    }

    /// The link this event's verification will ask `find` about, if any: callers that cannot
    /// look up synchronously resolve it before calling [`Verifier::feed`].
    pub fn lookup_needed(&self, row: &StoredEvent) -> Option<Vec<u8>> {
        (!self.links_at(row, row.seq) && row.prev_hash != GENESIS).then(|| row.prev_hash.clone())
    }

    /// Checks the next stored event. `find` answers which `seq` holds a given link.
    pub fn feed(&mut self, row: &StoredEvent, mut find: impl FnMut(&[u8]) -> Option<i64>) {
        self.events += 1;
        let expected = self.last_seq + 1;
        let mut gap = false;
        if row.seq > expected {
            self.findings.push(Finding::Deleted {
                first: expected,
                last: row.seq - 1,
            });
            gap = true;
        }
        if !self.links_at(row, row.seq) {
            match self.original_position(row, &mut find) {
                Some((original, predecessor_present)) => {
                    let offset = row.seq - original;
                    let continues_shift = self.shift == Some(offset)
                        && self.findings.last().is_some_and(|f| f.seq() == row.seq - 1);
                    if !continues_shift {
                        match self.findings.last() {
                            // A forged event followed by genuine ones pushed back by one.
                            Some(Finding::Edited { seq }) if *seq == row.seq - 1 && offset == 1 => {
                                let seq = *seq;
                                self.findings.pop();
                                self.findings.push(Finding::Inserted { seq });
                            }
                            _ if !predecessor_present => self.findings.push(Finding::Deleted {
                                first: original - 1,
                                last: original - 1,
                            }),
                            _ => self.findings.push(Finding::Reordered {
                                seq: row.seq,
                                original_seq: original,
                            }),
                        }
                    }
                    self.shift = Some(offset);
                }
                None => {
                    self.findings.push(Finding::Edited { seq: row.seq });
                    self.shift = None;
                }
            }
        } else {
            self.shift = None;
            let reported_before = self.findings.last().is_some_and(|f| f.seq() >= row.seq - 1);
            if !gap && row.prev_hash != self.last_hash && !reported_before {
                self.findings.push(Finding::ChainBroken { seq: row.seq });
            }
        }
        if let Some((hash, source)) = self.sealed.get(&row.seq) {
            if *hash != row.hash {
                self.findings.push(Finding::CheckpointMismatch {
                    seq: row.seq,
                    source: source.clone(),
                });
            }
        }
        self.last_seq = row.seq;
        self.last_hash.clone_from(&row.hash);
    }

    /// Ends the walk. `head` is the chain head the application maintains, if the store has one.
    pub fn finish(mut self, head: Option<(i64, Vec<u8>)>) -> Report {
        if let Some((head_seq, head_hash)) = head {
            if head_seq > self.last_seq {
                self.findings.push(Finding::Truncated {
                    last_present: self.last_seq,
                    expected: head_seq,
                    evidence: "the chain head".into(),
                });
            } else if head_seq < self.last_seq {
                self.findings.push(Finding::AppendedOutside {
                    first: head_seq + 1,
                });
            } else if head_hash != self.last_hash && self.findings.is_empty() {
                self.findings.push(Finding::ChainBroken { seq: head_seq });
            }
        }
        let beyond: Vec<_> = self
            .sealed
            .range(self.last_seq + 1..)
            .map(|(seq, (_, source))| (*seq, source.clone()))
            .collect();
        if let Some((seq, source)) = beyond.last() {
            self.findings.push(Finding::Truncated {
                last_present: self.last_seq,
                expected: *seq,
                evidence: format!("a signed checkpoint ({source})"),
            });
        }
        Report {
            events: self.events,
            last_seq: self.last_seq,
            findings: self.findings,
        }
    }
}

/// The outcome of a walk.
#[derive(Clone, Debug)]
pub struct Report {
    pub events: u64,
    pub last_seq: i64,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn is_intact(&self) -> bool {
        self.findings.is_empty()
    }
}
