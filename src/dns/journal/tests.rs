use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record};
use proptest::prelude::*;

use super::*;

pub(crate) fn zone() -> Name {
    Name::from_ascii("example.test.").unwrap()
}

pub(crate) fn txt(name: &str, text: &str, ttl: u32) -> Record {
    let data = RData::TXT(TXT::new(vec![text.to_string()]));
    Record::from_rdata(Name::from_ascii(name).unwrap(), ttl, data)
}

pub(crate) fn change(from: u32, to: u32, removed: &[Record], added: &[Record]) -> Changeset {
    Changeset {
        zone: zone(),
        from_serial: from,
        to_serial: to,
        removed: removed.to_vec(),
        added: added.to_vec(),
    }
}

/// The update that moves the zone to serial `to`: adds one record named after it.
fn numbered(to: u32) -> Changeset {
    change(
        to - 1,
        to,
        &[],
        &[txt(&format!("n{to}.example.test."), "v", 60)],
    )
}

fn open(dir: &Path) -> (Journal, Replayed) {
    Journal::open(dir, &zone(), Limits::default()).expect("opens")
}

fn journal_file(dir: &Path) -> std::path::PathBuf {
    dir.join("example.test.journal")
}

/// Changesets compared with their TTLs and names' case, which `==` on records ignores.
fn exact(changes: &[Changeset]) -> String {
    format!("{changes:?}")
}

/// A journal of three appends; returns the file's bytes and where the second and third
/// appends start.
fn three_appends(dir: &Path) -> (Vec<u8>, usize, usize) {
    let (mut journal, _) = open(dir);
    journal.append(&[numbered(1)]).unwrap();
    let second = journal.len_bytes() as usize;
    journal.append(&[numbered(2)]).unwrap();
    let third = journal.len_bytes() as usize;
    journal.append(&[numbered(3)]).unwrap();
    (fs::read(journal_file(dir)).unwrap(), second, third)
}

#[test]
fn appends_replay_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let batch = [
        change(
            7,
            8,
            &[txt("www.example.test.", "old", 300)],
            &[txt("WWW.example.test.", "new", 60)],
        ),
        change(
            8,
            9,
            &[],
            &[txt("_acme-challenge.example.test.", "token", 5)],
        ),
    ];
    let (mut journal, replayed) = open(dir.path());
    assert_eq!(
        replayed,
        Replayed {
            serial: None,
            delta: Delta::default()
        }
    );
    journal.append(&batch[..1]).unwrap();
    journal.append(&batch[1..]).unwrap();
    drop(journal);

    let (journal, replayed) = open(dir.path());
    assert_eq!(exact(journal.history()), exact(&batch));
    assert_eq!(replayed.serial, Some(9));
    assert_eq!(replayed.delta, fold(&batch));
    assert_eq!(
        journal.changes_since(8).map(exact),
        Some(exact(&batch[1..]))
    );
    assert_eq!(journal.changes_since(9).map(<[_]>::len), Some(0));
    assert!(journal.changes_since(6).is_none());
}

#[test]
fn a_thousand_appends_all_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path());
    for to in 1..=1000 {
        journal.append(&[numbered(to)]).unwrap();
    }
    drop(journal);
    let (journal, replayed) = open(dir.path());
    assert_eq!(replayed.serial, Some(1000));
    assert_eq!(journal.history().len(), 1000);
    let added = replayed.delta.added_records();
    for to in 1..=1000 {
        let want = txt(&format!("n{to}.example.test."), "v", 60);
        assert!(added.contains(&want), "n{to} missing");
    }
}

#[test]
fn a_torn_last_append_is_cut_at_every_length() {
    let dir = tempfile::tempdir().unwrap();
    let (full, _, third) = three_appends(dir.path());
    for cut in third..full.len() {
        // Cut short, or full length with the rest never written (zeros).
        let mut zeroed = full[..cut].to_vec();
        zeroed.resize(full.len(), 0);
        for bytes in [&full[..cut], &zeroed[..]] {
            fs::write(journal_file(dir.path()), bytes).unwrap();
            let (mut journal, replayed) = open(dir.path());
            assert_eq!(replayed.serial, Some(2), "cut at {cut}");
            assert_eq!(exact(journal.history()), exact(&[numbered(1), numbered(2)]));
            assert_eq!(
                fs::metadata(journal_file(dir.path())).unwrap().len(),
                third as u64
            );
            journal.append(&[numbered(3)]).unwrap();
        }
    }
    assert_eq!(fs::read(journal_file(dir.path())).unwrap(), full);
}

#[test]
fn a_torn_batch_with_a_later_entry_of_it_written_is_still_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path());
    journal.append(&[numbered(1)]).unwrap();
    let start = journal.len_bytes() as usize;
    journal.append(&[numbered(2), numbered(3)]).unwrap();
    drop(journal);
    // The first entry of the last batch never reached the disk, its second did.
    let mut bytes = fs::read(journal_file(dir.path())).unwrap();
    bytes[start..start + 30].fill(0);
    fs::write(journal_file(dir.path()), &bytes).unwrap();
    let (journal, replayed) = open(dir.path());
    assert_eq!(replayed.serial, Some(1));
    assert_eq!(journal.len_bytes(), start as u64);
}

#[test]
fn damage_before_a_later_append_is_an_error_naming_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (full, second, third) = three_appends(dir.path());
    // A payload byte, then the length field (made huge), of the middle entry.
    for (at, value) in [(second + 30, None), (second + 7, Some(0x7f))] {
        let mut bytes = full.clone();
        bytes[at] = value.unwrap_or(bytes[at] ^ 0x20);
        fs::write(journal_file(dir.path()), &bytes).unwrap();
        let err = Journal::open(dir.path(), &zone(), Limits::default()).unwrap_err();
        let JournalError::Replay {
            source: ReplayError::Damaged { offset, later, .. },
            ..
        } = &err
        else {
            panic!("damage error, got {err}");
        };
        assert_eq!((*offset, *later), (second as u64, third as u64));
        let text = err.to_string();
        assert!(
            text.contains(&format!("at byte {second}")) && text.contains("example.test.journal"),
            "{text}"
        );
        assert_eq!(
            fs::read(journal_file(dir.path())).unwrap(),
            bytes,
            "nothing cut"
        );
    }
}

#[test]
fn entries_that_do_not_chain_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = entry::header(&zone());
    entry::put_change(&mut bytes, 1, &numbered(1)).unwrap();
    let second = bytes.len();
    entry::put_change(&mut bytes, 2, &numbered(3)).unwrap();
    fs::write(journal_file(dir.path()), &bytes).unwrap();
    let err = Journal::open(dir.path(), &zone(), Limits::default()).unwrap_err();
    assert!(
        matches!(
            &err,
            JournalError::Replay { source: ReplayError::Chain { offset, link: LinkError::Gap { expected: 1, found: 2 } }, .. }
                if *offset == second as u64
        ),
        "{err}"
    );
}

#[test]
fn appends_that_do_not_follow_are_refused_unwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path());
    journal.append(&[numbered(1)]).unwrap();
    let len = journal.len_bytes();
    let mut other = numbered(2);
    other.zone = Name::from_ascii("other.test.").unwrap();
    let refused = [
        vec![numbered(3)],
        vec![numbered(2), numbered(4)],
        vec![change(1, 1, &[], &[])],
        vec![change(1, 1 + (1 << 31), &[], &[])],
        vec![other],
    ];
    for batch in refused {
        assert!(journal.append(&batch).is_err(), "{batch:?}");
    }
    assert_eq!(journal.len_bytes(), len);
    // Serials wrap (RFC 1982).
    let wrap = [
        (1, 0x7fff_ffff),
        (0x7fff_ffff, 0xffff_fff0),
        (0xffff_fff0, 5),
    ];
    let wrap: Vec<_> = wrap
        .iter()
        .map(|&(from, to)| change(from, to, &[], &[]))
        .collect();
    journal.append(&wrap).unwrap();
    assert_eq!(open(dir.path()).1.serial, Some(5));
}

#[test]
fn compaction_bounds_the_file_and_keeps_every_update() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_changes: 40,
        max_bytes: 8 << 10,
    };
    let (mut journal, _) = Journal::open(dir.path(), &zone(), limits).unwrap();
    let mut all = Vec::new();
    let mut largest = 0;
    for i in 0..600u32 {
        // ACME-like: a challenge added and removed, and every tenth update a lasting record.
        let challenge = txt("_acme-challenge.example.test.", &format!("token{i}"), 60);
        let (from, to) = (2 * i, 2 * i + 1);
        let mut batch = vec![change(from, to, &[], std::slice::from_ref(&challenge))];
        let mut removal = change(to, to + 1, &[challenge], &[]);
        if i % 10 == 0 {
            removal
                .added
                .push(txt(&format!("host{i}.example.test."), "v", 300));
        }
        batch.push(removal);
        journal.append(&batch).unwrap();
        all.extend(batch);
        journal.compact_if_needed().unwrap();
        largest = largest.max(journal.len_bytes());
        assert!(journal.history().len() <= limits.max_changes);
    }
    // 60 lasting records in the base, at most 8 KiB of history above it.
    assert!(largest < 8 * 1024 + 60 * 100, "{largest} bytes");
    let kept = journal.history().to_vec();
    drop(journal);

    let (journal, replayed) = Journal::open(dir.path(), &zone(), limits).unwrap();
    assert_eq!(replayed.serial, Some(1200));
    assert_eq!(replayed.delta, fold(&all));
    assert_eq!(replayed.delta.added_records().len(), 60);
    assert_eq!(exact(journal.history()), exact(&kept));
    assert_eq!(exact(&all[all.len() - kept.len()..]), exact(&kept));
    assert!(journal.changes_since(kept[0].from_serial).is_some());
    assert!(journal.changes_since(kept[0].from_serial - 1).is_none());
}

#[test]
fn damage_in_a_compacted_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path());
    journal
        .append(&[numbered(1), numbered(2), numbered(3)])
        .unwrap();
    journal.compact(1).unwrap();
    assert_eq!(journal.history().len(), 1);
    let header = entry::header(&zone()).len();
    drop(journal);
    let mut bytes = fs::read(journal_file(dir.path())).unwrap();
    bytes[header + entry::ENTRY_HEADER_LEN + 2] ^= 1;
    fs::write(journal_file(dir.path()), &bytes).unwrap();
    let err = Journal::open(dir.path(), &zone(), Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::Replay {
                source: ReplayError::Damaged { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rebase_keeps_the_state_and_restarts_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path());
    journal.append(&[numbered(1), numbered(2)]).unwrap();
    journal.rebase(100).unwrap();
    assert!(journal.history().is_empty() && journal.changes_since(1).is_none());
    assert!(journal.append(&[numbered(3)]).is_err());
    journal.append(&[numbered(101)]).unwrap();
    drop(journal);
    let (journal, replayed) = open(dir.path());
    assert_eq!(replayed.serial, Some(101));
    assert_eq!(
        replayed.delta,
        fold(&[numbered(1), numbered(2), numbered(101)])
    );
    assert_eq!(exact(journal.history()), exact(&[numbered(101)]));
}

#[test]
fn a_failed_write_poisons_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path());
    journal.append(&[numbered(1)]).unwrap();
    // A handle that cannot write stands in for a failing disk.
    journal.file = File::open(journal_file(dir.path())).unwrap();
    let failed = journal.append(&[numbered(2)]).unwrap_err();
    assert!(
        matches!(failed, JournalError::Io { op: "append", .. }),
        "{failed}"
    );
    let again = journal.append(&[numbered(2)]).unwrap_err();
    assert!(matches!(again, JournalError::Poisoned { .. }), "{again}");
    assert!(journal.compact(0).is_err());
    drop(journal);
    let (mut journal, replayed) = open(dir.path());
    assert_eq!(replayed.serial, Some(1));
    journal.append(&[numbered(2)]).unwrap();
}

#[test]
fn another_zones_file_and_a_leftover_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    three_appends(dir.path());
    fs::write(
        dir.path().join("example.test.journal.tmp"),
        b"half a compaction",
    )
    .unwrap();
    let (_, replayed) = open(dir.path());
    assert_eq!(replayed.serial, Some(3));
    assert!(!dir.path().join("example.test.journal.tmp").exists());

    fs::copy(
        journal_file(dir.path()),
        dir.path().join("other.test.journal"),
    )
    .unwrap();
    let other = Name::from_ascii("other.test.").unwrap();
    let err = Journal::open(dir.path(), &other, Limits::default()).unwrap_err();
    assert!(
        err.to_string().contains("belongs to zone example.test."),
        "{err}"
    );
}

#[test]
fn file_names_are_safe_and_distinct() {
    let name = |labels: &[&[u8]]| file_name(&Name::from_labels(labels.to_vec()).unwrap()).unwrap();
    assert_eq!(name(&[b"Example", b"COM"]), "example.com.journal");
    assert_eq!(name(&[]), "@.journal");
    assert_eq!(name(&[b"a.b", b"test"]), "a%2eb.test.journal");
    assert_eq!(name(&[b"a/b", b"test"]), "a%2fb.test.journal");
    assert_eq!(name(&[b"_tcp", b"test"]), "%5ftcp.test.journal");
    assert_eq!(name(&[b"@", b"test"]), "%40.test.journal");
    assert_eq!(name(&[b"%2e", b"test"]), "%252e.test.journal");
    assert_ne!(name(&[b"a.b", b"test"]), name(&[b"a", b"b", b"test"]));
    let long = Name::from_labels(vec![[b'%'; 63].as_slice(), &[b'%'; 63], b"test"]).unwrap();
    assert!(matches!(
        file_name(&long),
        Err(JournalError::NameTooLong { .. })
    ));
}

proptest! {
    /// Whatever follows a valid header and entries, replay returns (cutting or refusing)
    /// and never panics.
    #[test]
    fn any_bytes_after_the_header_replay_or_fail(tail in prop::collection::vec(any::<u8>(), 0..400), keep_entry in any::<bool>()) {
        let mut bytes = entry::header(&zone());
        if keep_entry {
            entry::put_change(&mut bytes, 1, &numbered(1)).unwrap();
        }
        let good = bytes.len();
        bytes.extend_from_slice(&tail);
        if let Ok(replay) = recover::replay(&bytes, &zone()) {
            prop_assert!(replay.end >= good);
        }
    }

    /// Random bytes that happen to carry entry markers: still no panic.
    #[test]
    fn marker_laden_bytes_replay_or_fail(chunks in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..40)), 0..20)) {
        let mut bytes = entry::header(&zone());
        for (marker, chunk) in chunks {
            if marker {
                bytes.extend_from_slice(&[0xD5, 0x4A, 2, 0]);
            }
            bytes.extend_from_slice(&chunk);
        }
        let _ = recover::replay(&bytes, &zone());
    }
}

/// Set in the child process of the SIGKILL test: the journal directory it appends to.
const CRASH_CHILD_DIR: &str = "EDGEWISE_JOURNAL_CRASH_CHILD_DIR";

/// A child process appends (compacting as it goes) and reports each append done; it is
/// killed with SIGKILL mid-stream, and every append it reported is found on reopening.
#[test]
fn appends_reported_done_survive_sigkill() {
    let limits = Limits {
        max_changes: 30,
        max_bytes: 1 << 20,
    };
    if let Some(dir) = std::env::var_os(CRASH_CHILD_DIR) {
        let (mut journal, _) = Journal::open(Path::new(&dir), &zone(), limits).unwrap();
        for to in 1..=100_000 {
            journal.append(&[numbered(to)]).unwrap();
            println!("appended {to}");
            journal.compact_if_needed().unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "dns::journal::tests::appends_reported_done_survive_sigkill",
        ])
        .args(["--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut done = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(n) = line.unwrap().strip_prefix("appended ") {
            done = n.parse().unwrap();
            if done >= 300 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(done, 300, "the child stopped early");

    let (_, replayed) = Journal::open(dir.path(), &zone(), limits).unwrap();
    assert!(replayed.serial >= Some(done));
    let added = replayed.delta.added_records();
    for to in 1..=done {
        let want = txt(&format!("n{to}.example.test."), "v", 60);
        assert!(
            added.contains(&want),
            "append {to} was reported done but is gone"
        );
    }
}
