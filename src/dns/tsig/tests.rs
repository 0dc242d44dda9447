use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::A};
use proptest::prelude::*;

use super::wire::{self, find_tsig, plain_fields};
use super::*;

const NOW: u64 = 1_700_000_000;

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn key(algorithm: Algorithm) -> TsigKey {
    TsigKey::new(
        &name("xfr-key."),
        algorithm,
        b"0123456789abcdef0123456789abcdef",
    )
}

fn keyring(key: TsigKey) -> (Keyring, Arc<TsigKey>) {
    let ring = Keyring::from_keys([key]);
    let key = ring.get(&name("xfr-key.")).unwrap().clone();
    (ring, key)
}

fn query(id: u16) -> Vec<u8> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(name("www.Example.test."), RecordType::A));
    msg.to_vec().unwrap()
}

fn answer(id: u16, n: u8) -> Vec<u8> {
    let mut msg = Message::new(id, MessageType::Response, OpCode::Query);
    msg.add_query(Query::query(name("www.example.test."), RecordType::A));
    msg.add_answer(Record::from_rdata(
        name("www.example.test."),
        60,
        RData::A(A::new(192, 0, 2, n)),
    ));
    msg.to_vec().unwrap()
}

fn signed(verification: Verification) -> SignedRequest {
    match verification {
        Verification::Signed(signed) => signed,
        other => panic!("expected a verified request, got {other:?}"),
    }
}

fn failure(verification: Verification) -> TsigFailure {
    match verification {
        Verification::Failed(failure) => *failure,
        other => panic!("expected a TSIG failure, got {other:?}"),
    }
}

/// A request signed as `sign_request` does, but carrying only the MAC's first `keep` bytes.
fn sign_truncated(key: &TsigKey, msg: &mut Vec<u8>, keep: usize) {
    let mut request = msg.clone();
    sign_request(key, &mut request, NOW).unwrap();
    let record = find_tsig(&request).unwrap().unwrap();
    let fields = plain_fields(key, NOW, FUDGE);
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let mut cut = record.mac.to_vec();
    cut.resize(keep, 0xaa);
    wire::write_record(msg, &fields, &cut, id);
    msg[11] += 1;
}

#[test]
fn requests_and_answers_round_trip_with_every_algorithm() {
    for algorithm in Algorithm::ALL {
        let (ring, key) = keyring(key(algorithm));
        let mut request = query(7);
        let request_mac = sign_request(&key, &mut request, NOW).unwrap();
        assert_eq!(request_mac.as_bytes().len(), algorithm.output_len());
        let signed = signed(verify(&ring, &request, NOW + 100));
        assert_eq!(signed.mac.as_bytes(), request_mac.as_bytes());
        assert_eq!(signed.key.algorithm(), algorithm);
        assert_eq!(signed.tsig_start, query(7).len());
        let mut response = answer(7, 1);
        let mut signer = signed.signer();
        let before = response.len();
        signer.sign(&mut response, NOW).unwrap();
        assert_eq!(response.len() - before, signer.record_len());
        verify_response(&key, request_mac, &response, NOW).unwrap();
        let parsed = Message::from_vec(&response).expect("hickory reads the signed answer");
        assert_eq!(parsed.answers.len(), 1);
    }
}

#[test]
fn a_changed_byte_is_badsig() {
    let (ring, key) = keyring(key(Algorithm::HmacSha256));
    let mut request = query(7);
    sign_request(&key, &mut request, NOW).unwrap();
    for at in [2, 3, 14, request.len() - 3] {
        let mut tampered = request.clone();
        tampered[at] ^= 0x01;
        let failed = failure(verify(&ring, &tampered, NOW));
        assert_eq!(failed.error, TsigRcode::BadSig, "byte {at}");
    }
    let mut mac_tampered = request.clone();
    let mac_at = find_tsig(&request).unwrap().unwrap().start + 50;
    mac_tampered[mac_at] ^= 0x80;
    assert_eq!(
        failure(verify(&ring, &mac_tampered, NOW)).error,
        TsigRcode::BadSig
    );
}

#[test]
fn an_unknown_key_or_algorithm_is_badkey_answered_unsigned() {
    let (ring, _) = keyring(key(Algorithm::HmacSha256));
    let other = TsigKey::new(&name("other."), Algorithm::HmacSha256, b"0123456789abcdef");
    let wrong_algorithm = key(Algorithm::HmacSha512);
    for signer in [&other, &wrong_algorithm] {
        let mut request = query(9);
        let mac = sign_request(signer, &mut request, NOW).unwrap();
        let failed = failure(verify(&ring, &request, NOW));
        assert_eq!(failed.error, TsigRcode::BadKey);
        assert_eq!(failed.key_name, *signer.wire_name());
        let mut response = answer(9, 1);
        failed.sign_error(&mut response, NOW).unwrap();
        let record = find_tsig(&response).unwrap().unwrap();
        assert!(record.mac.is_empty());
        assert_eq!(record.error, 17);
        assert_eq!(record.algorithm.as_bytes(), signer.algorithm().wire_name());
        let client_key = Arc::new(TsigKey::new(
            signer.name(),
            signer.algorithm(),
            b"irrelevant-secret",
        ));
        assert_eq!(
            verify_response(&client_key, mac, &response, NOW),
            Err(ResponseError::Rejected(17))
        );
    }
}

#[test]
fn a_time_outside_the_fudge_is_badtime_answered_signed_with_our_time() {
    let (ring, key) = keyring(key(Algorithm::HmacSha256));
    let mut request = query(3);
    let mac = sign_request(&key, &mut request, NOW).unwrap();
    assert!(matches!(
        verify(&ring, &request, NOW + 300),
        Verification::Signed(_)
    ));
    assert!(matches!(
        verify(&ring, &request, NOW - 300),
        Verification::Signed(_)
    ));
    let later = NOW + 301;
    let failed = failure(verify(&ring, &request, later));
    assert_eq!(failed.error, TsigRcode::BadTime);
    let mut response = answer(3, 1);
    failed.sign_error(&mut response, later).unwrap();
    let record = find_tsig(&response).unwrap().unwrap();
    assert_eq!(record.error, 18);
    assert_eq!(record.time_signed, NOW, "the request's time is repeated");
    assert_eq!(record.other, &later.to_be_bytes()[2..]);
    assert_eq!(record.mac.len(), 32);
    assert_eq!(
        verify_response(&key, mac, &response, NOW),
        Err(ResponseError::Rejected(18)),
        "the MAC verified before the error was reported"
    );
}

#[test]
fn a_tsig_record_before_another_record_is_formerr() {
    let (ring, key) = keyring(key(Algorithm::HmacSha256));
    let mut request = query(5);
    sign_request(&key, &mut request, NOW).unwrap();
    request.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    request[11] += 1;
    assert!(matches!(
        verify(&ring, &request, NOW),
        Verification::Malformed(Malformed::NotLast)
    ));
    let mut in_answers = query(5);
    sign_request(&key, &mut in_answers, NOW).unwrap();
    in_answers[7] = 1;
    in_answers[11] = 0;
    assert!(matches!(
        verify(&ring, &in_answers, NOW),
        Verification::Malformed(Malformed::NotLast)
    ));
}

#[test]
fn the_header_id_may_change_on_the_way_but_not_the_original_id() {
    let (ring, key) = keyring(key(Algorithm::HmacSha256));
    let mut request = query(7);
    sign_request(&key, &mut request, NOW).unwrap();
    let mut forwarded = request.clone();
    forwarded[..2].copy_from_slice(&99u16.to_be_bytes());
    assert!(matches!(
        verify(&ring, &forwarded, NOW),
        Verification::Signed(_)
    ));
}

#[test]
fn an_unsigned_request_is_unsigned() {
    let (ring, _) = keyring(key(Algorithm::HmacSha1));
    assert!(matches!(
        verify(&ring, &query(1), NOW),
        Verification::Unsigned
    ));
}

#[test]
fn truncated_macs_are_badtrunc_or_formerr_by_length() {
    let (ring, key) = keyring(key(Algorithm::HmacSha256));
    let mut permitted = query(2);
    sign_truncated(&key, &mut permitted, 16);
    assert_eq!(
        failure(verify(&ring, &permitted, NOW)).error,
        TsigRcode::BadTrunc
    );
    let mut forged = query(2);
    sign_truncated(&key, &mut forged, 16);
    let at = forged.len() - 10;
    forged[at] ^= 1;
    assert_eq!(
        failure(verify(&ring, &forged, NOW)).error,
        TsigRcode::BadSig
    );
    for keep in [12, 33] {
        let mut bad = query(2);
        sign_truncated(&key, &mut bad, keep);
        assert!(matches!(
            verify(&ring, &bad, NOW),
            Verification::Malformed(Malformed::BadMacSize)
        ));
    }
    let mut empty = query(2);
    sign_truncated(&key, &mut empty, 0);
    assert_eq!(failure(verify(&ring, &empty, NOW)).error, TsigRcode::BadSig);
}

#[test]
fn a_multi_message_answer_chains_each_mac_to_the_previous() {
    let (ring, key) = keyring(key(Algorithm::HmacSha512));
    let mut request = query(11);
    let request_mac = sign_request(&key, &mut request, NOW).unwrap();
    let mut signer = signed(verify(&ring, &request, NOW)).signer();
    let messages: Vec<Vec<u8>> = (1..=3)
        .map(|n| {
            let mut msg = answer(11, n);
            signer.sign(&mut msg, NOW + u64::from(n)).unwrap();
            msg
        })
        .collect();
    let mut verifier = ResponseVerifier::new(key.clone(), request_mac);
    for msg in &messages {
        verifier.verify(msg, NOW).unwrap();
    }
    let mut out_of_order = ResponseVerifier::new(key.clone(), request_mac);
    out_of_order.verify(&messages[0], NOW).unwrap();
    assert_eq!(
        out_of_order.verify(&messages[2], NOW),
        Err(ResponseError::BadSig)
    );
    let mut skipped_first = ResponseVerifier::new(key, request_mac);
    assert_eq!(
        skipped_first.verify(&messages[1], NOW),
        Err(ResponseError::BadSig)
    );
}

#[test]
fn keys_are_found_without_regard_to_case() {
    let ring = Keyring::from_keys([key(Algorithm::HmacSha256)]);
    assert!(ring.get(&name("XFR-KEY")).is_some());
    assert!(ring.get(&name("xfr-key.example.")).is_none());
    assert_eq!(ring.len(), 1);
    assert!(!format!("{ring:?}").contains("0123"));
}

#[test]
fn signing_refuses_what_does_not_fit() {
    let key = key(Algorithm::HmacSha256);
    let mut short = vec![0u8; 5];
    assert_eq!(
        sign_request(&key, &mut short, NOW).err(),
        Some(SignError::NoHeader(5))
    );
    let mut full = query(1);
    full[10] = 0xff;
    full[11] = 0xff;
    assert_eq!(
        sign_request(&key, &mut full, NOW).err(),
        Some(SignError::AdditionalFull)
    );
    let mut long = query(1);
    long.resize(65_500, 0);
    assert!(matches!(
        sign_request(&key, &mut long, NOW),
        Err(SignError::TooLong(_))
    ));
    assert_eq!(long.len(), 65_500, "left as it was");
}

#[test]
fn names_with_pointer_loops_are_malformed() {
    let (ring, _) = keyring(key(Algorithm::HmacSha256));
    let mut msg = query(1)[..12].to_vec();
    msg[5] = 0;
    msg[11] = 1;
    // A TSIG record whose owner is fine but whose algorithm name points at itself.
    msg.extend_from_slice(&[0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 18, 0xc0, 23]);
    msg.extend_from_slice(&[0; 16]);
    assert!(matches!(
        verify(&ring, &msg, NOW),
        Verification::Malformed(Malformed::BadName)
    ));
}

proptest! {
    #[test]
    fn any_bytes_are_verified_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (ring, _) = keyring(key(Algorithm::HmacSha256));
        let _ = verify(&ring, &bytes, NOW);
    }

    #[test]
    fn a_cut_or_changed_signed_request_never_verifies(cut in 0usize..200, flip in 0usize..200, bit in 0u8..8) {
        let (ring, key) = keyring(key(Algorithm::HmacSha256));
        let mut request = query(4);
        let mac = sign_request(&key, &mut request, NOW).unwrap();
        let len = request.len();
        let short = &request[..cut.min(len - 1)];
        prop_assert!(!matches!(verify(&ring, short, NOW), Verification::Signed(_)));
        let at = flip % len;
        let mut changed = request.clone();
        changed[at] ^= 1 << bit;
        // The header's ID is not signed (Original ID is), and TSIG's names ignore case.
        let harmless = at < 2
            || (at >= query(4).len() && bit == 5 && request[at].is_ascii_alphabetic());
        let outcome = verify(&ring, &changed, NOW);
        prop_assert!(harmless || !matches!(outcome, Verification::Signed(_)), "{outcome:?}");
        let _ = verify_response(&key, mac, &changed, NOW);
        if let Verification::Failed(failed) = outcome {
            let mut response = answer(4, 1);
            prop_assert!(failed.sign_error(&mut response, NOW).is_ok());
        }
    }
}
